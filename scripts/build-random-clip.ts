/**
 * Writes a CLIP-shaped reward backbone with random weights in the Hub layout (onnx/vision_model.onnx,
 * onnx/text_model.onnx, the embedded model's tokenizer, configs), at the sizes of the public CLIP models, so the
 * backbone's speed can be measured without downloading one: `ddpo bench backbone --backbone DIR`.
 *
 * Usage: node --import tsx scripts/build-random-clip.ts --size vit-b-32|vit-l-14 --out DIR
 */
import { parseArgs } from 'node:util';
import { writeTestClipFolder, type TestClipOptions } from '../test/unit/reward/helpers/clipFolder';

// openai/clip-vit-base-patch32 and openai/clip-vit-large-patch14 (config.json of each)
const SIZES: Record<string, TestClipOptions> = {
  'vit-b-32': {
    vision: { image: 224, patch: 32, hidden: 768, layers: 12, heads: 12, mlp: 3072 }, proj: 512,
    text: { hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 8, vocab_size: 49408, max_position_embeddings: 77 },
  },
  'vit-l-14': {
    vision: { image: 224, patch: 14, hidden: 1024, layers: 24, heads: 16, mlp: 4096 }, proj: 768,
    text: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, vocab_size: 49408, max_position_embeddings: 77 },
  },
};

const { values } = parseArgs({ options: { size: { type: 'string' }, out: { type: 'string' } } });
const size = SIZES[values.size ?? ''];
if (!size || !values.out) {
  console.error(`usage: build-random-clip.ts --size ${Object.keys(SIZES).join('|')} --out DIR`);
  process.exit(2);
}
const t0 = performance.now();
writeTestClipFolder(values.out, size);
console.log(`wrote ${values.size} with random weights to ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
