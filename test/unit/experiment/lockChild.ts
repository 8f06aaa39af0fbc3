// A process that tries to take an experiment's run lock once the file `go` appears (argv: dir, go, hold ms) and prints
// "won <pid>" or "refused: <message>"; the lock tests start several and let them go together.
import * as fs from 'node:fs';
import { acquireRunLock } from '../../../src/core/experiment/runLock';

const [dir, go, holdMs] = process.argv.slice(2);
process.stdout.write('ready\n');
while (!fs.existsSync(go)) { /* spin, so every process starts its attempt within microseconds of the others */ }
try {
  const lock = acquireRunLock(dir, `child ${process.pid}`, (line) => process.stdout.write(`log: ${line}\n`));
  process.stdout.write(`won ${process.pid}\n`);
  setTimeout(() => lock.release(), Number(holdMs));
} catch (e) {
  process.stdout.write(`refused: ${(e as Error).message}\n`);
}
