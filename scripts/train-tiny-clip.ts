/**
 * Trains the embedded tiny CLIP (image and text towers) contrastively on the shapes world and writes its folder in the
 * Hub layout (src/core/graphs/clipFolder.ts), then prints its zero-shot retrieval accuracy on held-out scenes.
 * Usage: node --import tsx scripts/train-tiny-clip.ts --out media/tiny-clip --steps 1500 --seed 0 [--batch 64] [--lr 2e-3]
 *        [--warmup 100] [--weight-decay 0.1] [--fixed-temperature] [--threads 2] [--groups shape,free]
 *        [--width 64] [--vision-layers 3] [--projection 32]
 * `--groups`: the cycle of batch group kinds (src/core/tiny/clipScenes.ts, ClipGroupKind); the default is the embedded model's.
 */
import { loadOnnxBackbone } from '../src/core/reward/onnxBackbone';
import { retrievalAccuracy } from '../src/core/tiny/clipEval';
import { CLIP_GROUP_KINDS, DEFAULT_CLIP_GROUPS, type ClipGroupKind } from '../src/core/tiny/clipScenes';
import { trainTinyClip } from '../src/core/tiny/clipTrain';
import { scriptFlags } from './flags';

const { flag, num } = scriptFlags('train-tiny-clip.ts --out DIR --steps N --seed S');

function groups(): ClipGroupKind[] {
  const list = flag('groups', DEFAULT_CLIP_GROUPS.join(',')).split(',');
  const bad = list.filter((g) => !(CLIP_GROUP_KINDS as readonly string[]).includes(g));
  if (bad.length || list.length === 0) throw new Error(`--groups: unknown group kind ${bad.join(', ')}; use a comma-separated cycle of ${CLIP_GROUP_KINDS.join(', ')}`);
  return list as ClipGroupKind[];
}

async function main(): Promise<void> {
  const out = flag('out', 'media/tiny-clip');
  const started = Date.now();
  const { losses, logitScale } = await trainTinyClip({
    out, steps: num('steps'), seed: num('seed', '0'), batch: num('batch', '64'), lr: num('lr', '2e-3'), warmup: num('warmup', '100'),
    weightDecay: num('weight-decay', '0.1'), learnTemperature: !process.argv.includes('--fixed-temperature'), groups: groups(), towers: { width: num('width', '64'), visionLayers: num('vision-layers', '3'), projection: num('projection', '32') }, threads: num('threads', '0') || undefined,
  });
  console.log(`trained in ${((Date.now() - started) / 60000).toFixed(1)} min; final loss ${losses[losses.length - 1]?.[1]}, logit scale ${logitScale.toFixed(3)}`);
  const clip = await loadOnnxBackbone(out);
  try {
    const acc = await retrievalAccuracy(clip, { scenes: 600, seed: 12345 });
    for (const [k, v] of Object.entries(acc)) console.log(`zero-shot ${k}: ${(v.accuracy * 100).toFixed(1)}% of ${v.n} (chance ${(v.chance * 100).toFixed(1)}%)`);
  } finally {
    await clip.dispose?.();
  }
}

main().catch((e) => { console.error((e as Error).message); process.exit(1); });
