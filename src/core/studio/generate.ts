/** Generates rating pairs into an experiment folder (worker side: loads onnxruntime through the pipeline). */
import { generateImages } from '../diffusion/generate';
import { DefectReport } from '../diffusion/outputChecks';
import type { StableDiffusionPipeline } from '../diffusion/pipeline';
import { withRunLock } from '../experiment/runLock';
import { readExperiment } from '../experiment/store';
import { listPairs, planPairs, writePair, type StoredPair } from './pairs';

/** Latent side for the experiment's image size, or the model's default when it does not divide. */
export async function latentSizeFor(pipe: StableDiffusionPipeline, imageSize: number): Promise<number> {
  const f = await pipe.vaeScaleFactor();
  const side = imageSize / f;
  return Number.isInteger(side) && side >= 8 ? side : pipe.defaultLatentSize;
}

/** Options of {@link generatePairsInto}. */
export interface GeneratePairsOptions {
  signal?: AbortSignal;
  onPair?: (p: StoredPair, done: number) => void;
  /** Hears images with no picture in them (the first of each kind, then how many); cut prompts are the pipeline's to warn of. */
  onWarning?: (message: string) => void;
}

/** Generates `count` pairs (two seeds of one prompt each) holding the experiment's run lock; `onPair` hears each as soon as it is on disk. */
export async function generatePairsInto(experimentDir: string, pipe: StableDiffusionPipeline, count: number, o: GeneratePairsOptions = {}): Promise<StoredPair[]> {
  return withRunLock(experimentDir, 'DDPO Studio pair generation', () => generateLocked(experimentDir, pipe, count, o));
}

async function generateLocked(experimentDir: string, pipe: StableDiffusionPipeline, count: number, o: GeneratePairsOptions): Promise<StoredPair[]> {
  const exp = await readExperiment(experimentDir);
  const s = exp.settings;
  const latent = await latentSizeFor(pipe, s.imageSize);
  const settings = { steps: s.steps, guidance: s.guidanceScale, eta: 1 };
  const defects = new DefectReport(settings, (m) => o.onWarning?.(m));
  const out: StoredPair[] = [];
  for (const plan of planPairs(exp.prompts, listPairs(experimentDir), count, s.seed)) {
    o.signal?.throwIfAborted();
    const images = await generateImages(pipe, { ...settings, prompt: plan.prompt, seed: plan.seeds[0], count: 2, batchSize: 2, latentHeight: latent, latentWidth: latent, signal: o.signal, defects });
    const pair = await writePair(experimentDir, plan, [images[0], images[1]]);
    out.push(pair);
    o.onPair?.(pair, out.length);
  }
  defects.finish();
  return out;
}
