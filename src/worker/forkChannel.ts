/** A WorkerChannel backed by a real child process forked with an IPC channel. */
import { fork } from 'node:child_process';
import type { ChannelFactory, ExitInfo } from './client';

/** Options for forking the worker script. */
export interface ForkOptions {
  /** Absolute path of dist/worker.js. */
  script: string;
  /** Receives the worker's stdout and stderr text as it arrives. */
  onOutput?(text: string, stream: 'stdout' | 'stderr'): void;
  /** Extra environment, or a function giving the whole environment, read at each start (e.g. the CUDA library path). */
  env?: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv);
}

const STDERR_TAIL_CHARS = 4000;

/**
 * Forks `script` with `process.execPath`: in VS Code that is Electron, so ELECTRON_RUN_AS_NODE makes it
 * plain node; in code-server or a plain node host it is node already.
 */
export function forkChannelFactory(opts: ForkOptions): ChannelFactory {
  return () => {
    const child = fork(opts.script, [], {
      execPath: process.execPath,
      env: { ...process.env, ...(typeof opts.env === 'function' ? opts.env() : opts.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    let stderrTail = '';
    child.stdout?.setEncoding('utf8').on('data', (t: string) => opts.onOutput?.(t, 'stdout'));
    child.stderr?.setEncoding('utf8').on('data', (t: string) => {
      stderrTail = (stderrTail + t).slice(-STDERR_TAIL_CHARS);
      opts.onOutput?.(t, 'stderr');
    });
    const exitListeners: ((info: ExitInfo) => void)[] = [];
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exited) return;
      exited = true;
      for (const l of exitListeners) l({ code, signal, stderrTail });
    };
    // 'close' waits for stdio to drain, so the stderr tail is complete.
    child.on('close', onExit);
    child.on('error', (e) => {
      stderrTail += `\n${e.message}`;
      onExit(null, null);
    });
    return {
      send: (msg) => {
        if (child.connected) child.send(msg);
      },
      onMessage: (cb) => child.on('message', cb),
      onExit: (cb) => exitListeners.push(cb),
      kill: () => {
        exited = true;
        child.kill();
      },
    };
  };
}
