/**
 * What a reward head sees, made from a backbone's embeddings. `image`: the image embedding as the backbone gives it
 * (heads saved before prompts counted, and backbones without a text tower). `image-prompt-v1`, for backbones with a
 * text tower: the unit-normalised image embedding u, the prompt's text embedding v, their elementwise product u⊙v and
 * their cosine u·v. In a same-prompt comparison a linear head's v part cancels; u⊙v lets it weigh how well each aspect
 * of the image matches the prompt (the cosine with learned weights), as the [u, v, u⊙v] pair features of sentence
 * encoders do, and an MLP head can also read v to change its taste with the prompt.
 */
import type { Backbone } from './backbone';

/** The layouts a head's input can have (saved with the head; absent in old heads: `image`). */
export type FeatureLayout = 'image' | 'image-prompt-v1';

/** All layouts, for validating saved heads. */
export const FEATURE_LAYOUTS: readonly FeatureLayout[] = ['image', 'image-prompt-v1'];

/** The layout a head trained on this backbone gets: prompt-aware when it has a text tower. */
export function layoutFor(backbone: Backbone): FeatureLayout {
  return backbone.text ? 'image-prompt-v1' : 'image';
}

/** Width of the head's input for a backbone `dim` wide. */
export function headInputDim(layout: FeatureLayout, dim: number): number {
  return layout === 'image' ? dim : 3 * dim + 1;
}

/** Cosine similarity of two embeddings (0 when either is zero). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

function unit(x: Float32Array): Float32Array {
  let n = 0;
  for (const v of x) n += v * v;
  n = Math.sqrt(n);
  return n > 0 ? x.map((v) => v / n) : x.slice();
}

/** The head's input for one image embedding (and the embedding of the prompt it was made for, which a prompt-aware layout needs). */
export function headInput(layout: FeatureLayout, image: Float32Array, prompt?: Float32Array): Float32Array {
  if (layout === 'image') return image;
  if (!prompt) throw new Error('a prompt-aware reward head needs the prompt\'s text embedding with each image');
  if (prompt.length !== image.length) throw new Error(`image embedding is ${image.length} wide but the prompt's is ${prompt.length}; they must share one space`);
  const u = unit(image), v = unit(prompt), d = u.length;
  const out = new Float32Array(3 * d + 1);
  out.set(u, 0);
  out.set(v, d);
  for (let i = 0; i < d; i++) out[2 * d + i] = u[i] * v[i];
  out[3 * d] = cosine(image, prompt);
  return out;
}
