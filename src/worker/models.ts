/** Keeps one loaded pipeline per model folder, so pair generation does not reload models for every batch. */
import { StableDiffusionPipeline } from '../core/diffusion/pipeline';

const pipelines = new Map<string, Promise<StableDiffusionPipeline>>();

/** The pipeline of `modelDir`, loaded on first use (a failed load is forgotten so a retry reloads). */
export function pipelineFor(modelDir: string): Promise<StableDiffusionPipeline> {
  let p = pipelines.get(modelDir);
  if (!p) {
    // TODO(perf): use src/core/runtime's provider choice (with CPU fallback) once it exports it; CPU for now.
    p = StableDiffusionPipeline.load(modelDir, { ep: 'cpu' });
    pipelines.set(modelDir, p);
    p.catch(() => pipelines.delete(modelDir));
  }
  return p;
}

/** Releases every cached pipeline (before a heavy job such as fine-tuning needs the memory). */
export async function releasePipelines(): Promise<void> {
  const all = [...pipelines.values()];
  pipelines.clear();
  for (const p of all) await (await p.catch(() => undefined))?.release();
}
