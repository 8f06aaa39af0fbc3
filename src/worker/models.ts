/** Keeps one loaded pipeline per model folder and provider choice, so pair generation does not reload models for every batch. */
import { StableDiffusionPipeline } from '../core/diffusion/pipeline';
import { useFastUnet } from '../core/diffusion/fastUnet';
import type { OpenedSession } from '../core/runtime/providers';
import type { JobProviders } from '../core/runtime/jobProviders';

interface CachedPipeline {
  pipe: Promise<StableDiffusionPipeline>;
  /** Where each of its models opened, told again to every job that reuses it. */
  opened: Map<string, Pick<OpenedSession, 'ep' | 'failures'>>;
  /** The job using it now: hears of the generation UNet rebuilt at its first call. */
  current: JobProviders;
}

const pipelines = new Map<string, CachedPipeline>();

/**
 * The pipeline of `modelDir` opened with `providers`, loaded on first use (a failed load is forgotten so a retry
 * reloads); `providers.onOpened` hears where each model runs, also when the pipeline was already loaded.
 * On a GPU provider (`fastUnet` 'auto'; 'on' forces it, for tests) generation runs the UNet rebuilt in float16 with
 * fused attention, built at its first call; the job running then hears of it.
 */
export async function pipelineFor(modelDir: string, providers: JobProviders, opts: { fastUnet?: 'auto' | 'on' | 'off' } = {}): Promise<StableDiffusionPipeline> {
  const key = `${modelDir}\n${providers.key}`;
  let c = pipelines.get(key);
  if (!c) {
    const opened: CachedPipeline['opened'] = new Map();
    // where each model's nodes ran is told once, after its first run, to the job that loaded it
    const pipe = StableDiffusionPipeline.load(modelDir, {
      providers: { candidates: providers.candidates, options: providers.options, onOpened: (what, o) => opened.set(what, o), onPlacement: providers.onPlacement },
      // a prompt cut to the text encoder's length, told once per prompt to the job that encodes it first
      onWarning: (m) => cached.current.log?.(`warning: ${m}`),
    });
    const cached: CachedPipeline = { pipe, opened, current: providers };
    c = cached;
    pipelines.set(key, c);
    pipe.catch(() => pipelines.delete(key));
    // on a GPU provider, generation runs a UNet rebuilt in float16 with fused attention (about twice as fast)
    const fast = opts.fastUnet ?? 'auto';
    pipe.then((p) => {
      if (fast === 'off' || (fast === 'auto' && p.ep === 'cpu')) return;
      useFastUnet(p, {
        providers: {
          // only where the exported UNet runs: should that provider refuse it, generation stays there on the export
          candidates: [p.ep], options: providers.options,
          onOpened: (what, o) => { opened.set(what, o); cached.current.onOpened?.(what, o); },
          onPlacement: (...a) => cached.current.onPlacement?.(...a),
        },
        onLog: (line) => cached.current.log?.(line),
      });
    }, () => undefined);
  }
  c.current = providers;
  const pipe = await c.pipe;
  for (const [what, o] of [...c.opened].sort(([a], [b]) => a.localeCompare(b))) providers.onOpened?.(what, o);
  return pipe;
}

/** Releases every cached pipeline (before a heavy job such as fine-tuning needs the memory). */
export async function releasePipelines(): Promise<void> {
  const all = [...pipelines.values()];
  pipelines.clear();
  for (const c of all) await (await c.pipe.catch(() => undefined))?.release();
}
