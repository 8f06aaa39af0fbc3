/** `ddpo` started once more with the CUDA provider's libraries on LD_LIBRARY_PATH, which the loader reads only at start. */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { CUDA_ENV_MARK, cudaLibraryEnv, mayUseCuda, ortBinDir } from '../core/runtime/cudaLibraries';

/**
 * When `ddpo install-cuda` recorded library folders that this process's LD_LIBRARY_PATH lacks and the command line may
 * use CUDA, runs the same command in a child with them added and resolves to its exit code; otherwise undefined.
 */
export function restartWithCudaLibraries(argv: readonly string[] = process.argv): Promise<number> | undefined {
  if (process.env[CUDA_ENV_MARK] || !mayUseCuda(argv.slice(2))) return undefined;
  const env = cudaLibraryEnv(process.env, ortBinDir());
  if (!env) return undefined;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...argv.slice(1)], { stdio: 'inherit', env });
    // Ctrl+C reaches the child from the terminal itself; a signal sent to this process alone is passed on
    const pass = (signal: NodeJS.Signals) => { child.kill(signal); };
    process.on('SIGINT', () => {});
    process.on('SIGTERM', pass);
    process.on('SIGHUP', pass);
    child.on('error', (e) => { process.stderr.write(`could not restart ddpo with the CUDA libraries: ${e.message}\n`); resolve(1); });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}
