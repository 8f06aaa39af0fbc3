/**
 * Named points where a kill/resume test makes the process kill itself, so the kill always lands where the test
 * means it to (a timer may fire after the run has finished). `DDPO_CRASH_AT=<point>` or `<point>:<n>` sends SIGKILL
 * to this process the n-th time (default: the first) it reaches `<point>`; without the variable nothing happens.
 */

/** The points: an epoch trained but not yet logged, an epoch's metrics line written, a checkpoint's files written to its temp folder but not yet renamed into place. */
export type CrashPoint = 'epoch-trained' | 'epoch-logged' | 'checkpoint-files-written';

/** The environment variable that names the point. */
export const CRASH_AT_ENV = 'DDPO_CRASH_AT';

const reached = new Map<CrashPoint, number>();

/** Kills this process with SIGKILL if DDPO_CRASH_AT names `point` and this is the time it names. */
export function crashPoint(point: CrashPoint): void {
  const want = process.env[CRASH_AT_ENV];
  if (!want) return;
  const [name, nth = '1'] = want.split(':');
  if (name !== point) return;
  const count = (reached.get(point) ?? 0) + 1;
  reached.set(point, count);
  if (count === Number(nth)) process.kill(process.pid, 'SIGKILL');
}
