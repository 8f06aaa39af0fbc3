/** A tiny SDXL-shaped model folder built by the graph builders: two text encoders (penultimate states 32 + 32, pooled 32), the reference VAE and tokenizer. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { buildUNet } from '../../../src/core/graphs/unet';
import { buildClipTextEncoder } from '../../../src/core/graphs/clipText';
import { writeModelFolder, DEFAULT_SCHEDULER_CONFIG } from '../../../src/core/graphs/modelFolder';
import { TINY_SDXL_UNET_CONFIG } from '../../../src/core/graphs/presets';
import { loadModel } from '../../../src/core/onnx/proto';
import { TINY_CLIP_TEXT_CONFIG } from './helpers';
import { referenceSd } from '../fixtures';

/** Writes the folder into a fresh temp dir (removed at exit) and returns it. */
export function tinySdxlFolder(): string {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ddpo-sdxl-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  writeModelFolder(dir, {
    unet: buildUNet(TINY_SDXL_UNET_CONFIG, { seed: 11 }),
    textEncoder: buildClipTextEncoder(TINY_CLIP_TEXT_CONFIG, { seed: 12, hiddenStates: true }),
    textEncoder2: buildClipTextEncoder({ ...TINY_CLIP_TEXT_CONFIG, hidden_act: 'gelu' }, { seed: 13, hiddenStates: true, projectionDim: 32, inputIds: 'int64' }),
    vaeDecoder: loadModel(join(referenceSd, 'vae_decoder/model.onnx')),
    tokenizerDir: join(referenceSd, 'tokenizer'),
    scheduler: DEFAULT_SCHEDULER_CONFIG,
    name: 'tiny-sdxl',
  });
  return dir;
}
