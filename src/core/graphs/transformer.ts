/** Transformer2DModel (spatial transformer) and BasicTransformerBlock as in diffusers' SD UNets. */
import { A } from '../onnx/builder';
import { attention, conv2d, gegluFeedForward, groupNorm, layerNorm, linear, Net } from './layers';

/** Shape of one Transformer2DModel. */
export interface Transformer2DSpec {
  channels: number;
  heads: number;
  crossDim: number;
  layers: number;
  groups: number;
  useLinearProjection: boolean;
}

/** BasicTransformerBlock: x + attn1(norm1 x); x + attn2(norm2 x, context); x + ff(norm3 x). */
export function basicTransformerBlock(net: Net, x: string, context: string, dim: number, heads: number, crossDim: number): string {
  const b = net.b;
  let h = x;
  const n1 = layerNorm(net, h, 'norm1', dim, 1e-5);
  const a1 = net.sub('attn1', () => attention(net, n1, n1, dim, { heads, qkvBias: false }));
  h = b.op('Add', [a1, h]);
  const n2 = layerNorm(net, h, 'norm2', dim, 1e-5);
  const a2 = net.sub('attn2', () => attention(net, n2, context, dim, { heads, kvDim: crossDim, qkvBias: false }));
  h = b.op('Add', [a2, h]);
  const f = gegluFeedForward(net, layerNorm(net, h, 'norm3', dim, 1e-5), dim);
  return b.op('Add', [f, h]);
}

/** Transformer2DModel on `[B, C, H, W]`: GroupNorm, proj_in (1x1 conv or linear), blocks, proj_out, + residual. */
export function transformer2d(net: Net, x: string, context: string, s: Transformer2DSpec): string {
  const b = net.b;
  const c = s.channels;
  const toTokens = (t: string): string =>
    b.op('Reshape', [b.op('Transpose', [t], { perm: A.ints([0, 2, 3, 1]) }), b.constI64([0, -1, c])], { allowzero: A.i(0) });
  // [B, HW, C] -> [B, C, H, W] using the residual's own shape (inner dim == channels in SD UNets)
  const toImage = (t: string): string =>
    b.op('Reshape', [b.op('Transpose', [t], { perm: A.ints([0, 2, 1]) }), b.op('Shape', [x])], { allowzero: A.i(0) });
  let h = groupNorm(net, x, 'norm', c, s.groups, 1e-6);
  h = s.useLinearProjection ? linear(net, toTokens(h), 'proj_in', c, c) : toTokens(conv2d(net, h, 'proj_in', c, c, 1));
  for (let l = 0; l < s.layers; l++) {
    const hin = h;
    h = net.sub(`transformer_blocks.${l}`, () => basicTransformerBlock(net, hin, context, c, s.heads, s.crossDim));
  }
  h = s.useLinearProjection ? toImage(linear(net, h, 'proj_out', c, c)) : conv2d(net, toImage(h), 'proj_out', c, c, 1);
  return b.op('Add', [h, x]);
}
