/** Builds the decoder half of a diffusers `AutoencoderKL` (post_quant_conv + Decoder) as an ONNX graph like the public exports. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { attention, conv2d, groupNorm, Net, resnet, silu, upsample } from './layers';
import { StateDict, WeightSource } from './weights';

/** The subset of diffusers' AutoencoderKL config.json the builder reads. */
export interface VaeDecoderConfig {
  block_out_channels: number[];
  layers_per_block: number;
  latent_channels: number;
  out_channels: number;
  norm_num_groups?: number;
  scaling_factor?: number;
  mid_block_add_attention?: boolean;
}

/** Options of {@link buildVaeDecoder}. */
export interface VaeBuildOptions {
  /** Name linear weights `onnx::MatMul_<n>` like the TorchScript exporter (default: by diffusers/transformers module name). */
  anonymousLinears?: boolean;
  weights?: 'random' | StateDict;
  seed?: number;
  opset?: number;
}

const EPS = 1e-6;

/** Builds `latent_sample [batch, latent, h, w]` -> `sample [batch, out, H, W]` (H = h·2^(blocks-1)). */
export function buildVaeDecoder(config: VaeDecoderConfig, opts: VaeBuildOptions = {}): Model {
  const ch = config.block_out_channels;
  const groups = config.norm_num_groups ?? 32;
  const graph = emptyGraph('vae_decoder');
  const b = new GraphBuilder(graph);
  const w = new WeightSource(opts.weights && opts.weights !== 'random' ? opts.weights : null, opts.seed ?? 0, 'buildVaeDecoder');
  const net = new Net(b, w, opts.opset ?? 17, opts.anonymousLinears ?? false);
  const z = b.input('latent_sample', DataType.FLOAT, ['batch', config.latent_channels, 'h', 'w']);
  const zq = conv2d(net, z, 'post_quant_conv', config.latent_channels, config.latent_channels, 1);
  net.sub('decoder', () => {
    const top = ch[ch.length - 1];
    let h = conv2d(net, zq, 'conv_in', config.latent_channels, top, 3);
    net.sub('mid_block', () => {
      h = resnet(net, h, null, 0, 'resnets.0', top, top, groups, EPS);
      if (config.mid_block_add_attention !== false) h = net.sub('attentions.0', () => vaeAttention(net, h, top, groups));
      h = resnet(net, h, null, 0, 'resnets.1', top, top, groups, EPS);
    });
    const rch = [...ch].reverse();
    let hc = top;
    for (let i = 0; i < rch.length; i++) {
      net.sub(`up_blocks.${i}`, () => {
        for (let j = 0; j <= config.layers_per_block; j++) {
          h = resnet(net, h, null, 0, `resnets.${j}`, hc, rch[i], groups, EPS);
          hc = rch[i];
        }
        if (i < rch.length - 1) h = upsample(net, h, hc);
      });
    }
    h = silu(net, groupNorm(net, h, 'conv_norm_out', hc, groups, EPS), 'conv_act');
    conv2d(net, h, 'conv_out', hc, config.out_channels, 3, 1, 'sample');
  });
  const up = 2 ** (ch.length - 1);
  graph.outputs.push({ name: 'sample', elemType: DataType.FLOAT, shape: ['batch', config.out_channels, up === 1 ? 'h' : 'H', up === 1 ? 'w' : 'W'] });
  const model = makeModel(graph, opts.opset ?? 17);
  model.metadata = { source: 'ddpo-studio buildVaeDecoder', config: JSON.stringify(config), parameters: String(w.params) };
  return model;
}

// Single-head self-attention over pixels: GroupNorm on [B, C, HW], attention on [B, HW, C], back to [B, C, H, W], + residual.
function vaeAttention(net: Net, x: string, c: number, groups: number): string {
  const b = net.b;
  const flat = b.op('Reshape', [x, b.constI64([0, 0, -1])], { allowzero: A.i(0) });
  const n = groupNorm(net, flat, 'group_norm', c, groups, EPS, [c, 1]);
  const tokens = b.op('Transpose', [n], { perm: A.ints([0, 2, 1]) });
  const a = attention(net, tokens, tokens, c, { heads: 1, qkvBias: true });
  const img = b.op('Reshape', [b.op('Transpose', [a], { perm: A.ints([0, 2, 1]) }), b.op('Shape', [x])], { allowzero: A.i(0) });
  return b.op('Add', [img, x]);
}
