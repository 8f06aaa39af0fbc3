/**
 * The tiny model's frozen text encoder: a 1-layer CLIP text transformer whose weights are constructed, not trained,
 * so that every output position says which word it is, where it is, and which word came just before it.
 */
import { buildClipTextEncoder, ClipTextConfig } from '../graphs/clipText';
import { Model } from '../onnx/ir';
import { mulberry32 } from '../random';

/** Width of the text features (the UNet's cross_attention_dim). */
export const TINY_TEXT_DIM = 32;

// Feature layout of the 32 hidden dims: [0,12) the token, [12,18) the position, [18,30) the previous token.
const TOK = 12, POS0 = 12, FREQS = 3, PREV0 = 18, HEADS = 4, HEAD_DIM = 8;
const PERIOD = 16;

/** CLIP text encoder config of the tiny model. */
export function tinyTextConfig(vocabSize: number, eosId: number): ClipTextConfig {
  return {
    vocab_size: vocabSize, hidden_size: TINY_TEXT_DIM, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: HEADS,
    max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: eosId,
  };
}

/**
 * Builds the encoder. Token embeddings are seeded random zero-mean unit vectors in dims [0,12); position i is
 * (cos, sin)(2πf·i/16) for f = 1..3 in dims [12,18). Every head's query reads position i and its key position j
 * rotated one step, so q·k peaks at j = i-1 and the causal softmax picks the previous word, whose token dims the
 * values copy into dims [18,30). The MLP is zeroed. A caption word's feature thus binds to its neighbour:
 * "circle" carries the colour before it, "background" the background colour.
 */
export function buildTinyTextEncoder(vocabSize: number, eosId: number, seed = 0): Model {
  const m = buildClipTextEncoder(tinyTextConfig(vocabSize, eosId), { seed, inputIds: 'int32' });
  const D = TINY_TEXT_DIM;
  const set = (leaf: string, fill: (d: Float32Array) => void) => {
    const name = leaf.startsWith('final') ? `text_model.${leaf}` : leaf.startsWith('embeddings') ? `text_model.${leaf}` : `text_model.encoder.layers.0.${leaf}`;
    const t = m.graph.initializers.get(name);
    if (!t) throw new Error(`buildTinyTextEncoder: the CLIP graph has no weight ${name}`);
    const d = t.data as Float32Array;
    d.fill(0);
    fill(d);
  };
  const rand = mulberry32(seed * 31 + 5);
  set('embeddings.token_embedding.weight', (d) => {
    for (let v = 0; v < vocabSize; v++) {
      const x = Array.from({ length: TOK }, () => rand() - 0.5);
      const mean = x.reduce((a, b) => a + b, 0) / TOK;
      const norm = Math.hypot(...x.map((e) => e - mean));
      x.forEach((e, k) => { d[v * D + k] = (3 * (e - mean)) / norm; });
    }
  });
  set('embeddings.position_embedding.weight', (d) => {
    for (let i = 0; i < 77; i++) for (let f = 0; f < FREQS; f++) {
      const a = (2 * Math.PI * (f + 1) * i) / PERIOD;
      d[i * D + POS0 + 2 * f] = Math.cos(a);
      d[i * D + POS0 + 2 * f + 1] = Math.sin(a);
    }
  });
  for (const ln of ['layer_norm1', 'layer_norm2', 'final_layer_norm']) set(`${ln}.weight`, (d) => d.fill(1));
  // W is stored [in, out] (x @ W). Logit sharpness: after LN the position part has norm ~2.4, so scale 4 per side.
  const sharp = 4;
  set('self_attn.q_proj.weight', (w) => {
    for (let h = 0; h < HEADS; h++) for (let k = 0; k < 2 * FREQS; k++) w[(POS0 + k) * D + h * HEAD_DIM + k] = sharp;
  });
  set('self_attn.k_proj.weight', (w) => {
    // key of position j = position j+1: rotate each (cos, sin) pair by +2πf/16
    for (let h = 0; h < HEADS; h++) for (let f = 0; f < FREQS; f++) {
      const a = (2 * Math.PI * (f + 1)) / PERIOD, c = Math.cos(a), s = Math.sin(a);
      const ci = POS0 + 2 * f, si = ci + 1, co = h * HEAD_DIM + 2 * f, so = co + 1;
      w[ci * D + co] = sharp * c; w[si * D + co] = -sharp * s;
      w[ci * D + so] = sharp * s; w[si * D + so] = sharp * c;
    }
  });
  // head h copies token dims [3h, 3h+3) into its value dims, out_proj writes them to [18+3h, 18+3h+3)
  set('self_attn.v_proj.weight', (w) => {
    for (let h = 0; h < HEADS; h++) for (let k = 0; k < 3; k++) w[(3 * h + k) * D + h * HEAD_DIM + k] = 1;
  });
  set('self_attn.out_proj.weight', (w) => {
    for (let h = 0; h < HEADS; h++) for (let k = 0; k < 3; k++) w[(h * HEAD_DIM + k) * D + PREV0 + 3 * h + k] = 1;
  });
  for (const z of ['q_proj.bias', 'k_proj.bias', 'v_proj.bias', 'out_proj.bias']) set(`self_attn.${z}`, () => {});
  for (const z of ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']) set(`mlp.${z}`, () => {});
  m.metadata.source = 'ddpo-studio tiny model text encoder (constructed weights: token, position, previous token)';
  return m;
}
