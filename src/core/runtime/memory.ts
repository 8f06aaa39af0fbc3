/** Peak memory: the process's resident set on the host, and the GPU's used memory sampled by nvidia-smi. */
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

/** Peak resident set of this process in bytes (Linux VmHWM; the current RSS elsewhere). */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss;
}

/** Resets the peak-RSS mark so the next phase is measured alone (Linux ≥ 4.0); false when not possible. */
export function resetPeakRss(): boolean {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); return true; } catch { return false; }
}

/** The GPU's name from nvidia-smi, or undefined when there is none. */
export function nvidiaGpuName(): string | undefined {
  try { return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 5000 }).split('\n')[0].trim() || undefined; } catch { return undefined; }
}

/**
 * Samples the GPU's used memory every 50 ms in a child `nvidia-smi` (a session run blocks this thread, so
 * in-process sampling would miss the peak). It counts the whole GPU, so only meaningful on an otherwise idle card.
 */
export class GpuMemorySampler {
  private child?: ChildProcess;
  private maxMiB = 0;
  private baseMiB?: number;

  /** Starts sampling; does nothing when nvidia-smi is absent. */
  start(): this {
    try {
      this.child = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '50'], { stdio: ['ignore', 'pipe', 'ignore'] });
      this.child.on('error', () => { this.child = undefined; });
      this.child.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          const v = Number(line.trim());
          if (!line.trim() || !Number.isFinite(v)) continue;
          this.baseMiB ??= v;
          this.maxMiB = Math.max(this.maxMiB, v);
        }
      });
    } catch { this.child = undefined; }
    return this;
  }

  /** Peak used MiB since start and the first sample (the baseline), or undefined without nvidia-smi. */
  peek(): { peakMiB: number; baselineMiB: number } | undefined {
    return this.baseMiB === undefined ? undefined : { peakMiB: this.maxMiB, baselineMiB: this.baseMiB };
  }

  /** Restarts the peak from the current level. */
  resetPeak(): void { this.maxMiB = 0; }

  /** Stops the sampler. */
  stop(): void { this.child?.kill(); this.child = undefined; }
}
