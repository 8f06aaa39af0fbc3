/** Builds a diffusers `UNet2DConditionModel` (SD 1.x/2.x topology) as an ONNX graph shaped like the public exports. */
import { A, GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, Model } from '../onnx/ir';
import { downsample, gemm, groupNorm, conv2d, Net, resnet, silu, upsample } from './layers';
import { transformer2d } from './transformer';
import { StateDict, WeightSource } from './weights';

/** The subset of diffusers' UNet2DConditionModel config.json the builder understands (snake_case, as in the file). */
export interface UNetConfig {
  sample_size: number;
  in_channels: number;
  out_channels: number;
  layers_per_block: number;
  block_out_channels: number[];
  down_block_types: string[];
  up_block_types: string[];
  cross_attention_dim: number;
  /** Number of heads per block (diffusers' historical naming), one value or one per down block. */
  attention_head_dim: number | number[];
  norm_num_groups?: number;
  norm_eps?: number;
  use_linear_projection?: boolean;
  /** Transformer blocks per attention, one value or one per down block (SDXL: [1, 2, 10]). */
  transformer_layers_per_block?: number | number[];
  /** SDXL's added conditioning: `text_embeds` (pooled text) and `time_ids` (sizes and crop) join the time embedding. */
  addition_embed_type?: 'text_time';
  addition_time_embed_dim?: number;
  projection_class_embeddings_input_dim?: number;
  flip_sin_to_cos?: boolean;
  freq_shift?: number;
}

/** How the `timestep` input is declared: int64 `[batch]` (SD 1.x exports), float `[batch]`, or a float scalar. */
export type TimestepKind = 'int64-batch' | 'float-batch' | 'float-scalar';

/** Options of {@link buildUNet}. */
export interface BuildOptions {
  /** Name linear weights `onnx::MatMul_<n>` like the TorchScript exporter (default: by diffusers/transformers module name). */
  anonymousLinears?: boolean;
  /** `'random'` (default) or a state dict in PyTorch layout keyed by diffusers names. */
  weights?: 'random' | StateDict;
  seed?: number;
  timestep?: TimestepKind;
  /** Default-domain opset, 14..20 (default 17). */
  opset?: number;
}

const DOWN = new Set(['CrossAttnDownBlock2D', 'DownBlock2D']);
const UP = new Set(['CrossAttnUpBlock2D', 'UpBlock2D']);

function checkConfig(c: UNetConfig): void {
  const n = c.block_out_channels.length;
  const bad = (msg: string): never => { throw new Error(`UNet config: ${msg}`); };
  if (c.down_block_types.length !== n || c.up_block_types.length !== n) bad(`down_block_types and up_block_types need ${n} entries (one per block_out_channels)`);
  c.down_block_types.forEach((t) => DOWN.has(t) || bad(`down block type "${t}" is not supported (use ${[...DOWN].join(' or ')})`));
  c.up_block_types.forEach((t) => UP.has(t) || bad(`up block type "${t}" is not supported (use ${[...UP].join(' or ')})`));
  if (Array.isArray(c.attention_head_dim) && c.attention_head_dim.length !== n) bad(`attention_head_dim list needs ${n} entries`);
  if (c.block_out_channels[0] % 2) bad('block_out_channels[0] must be even (sinusoidal timestep embedding)');
  if (Array.isArray(c.transformer_layers_per_block) && c.transformer_layers_per_block.length !== n) bad(`transformer_layers_per_block list needs ${n} entries`);
  if (c.addition_embed_type !== undefined && c.addition_embed_type !== 'text_time') bad(`addition_embed_type "${c.addition_embed_type}" is not supported (use "text_time", SDXL's)`);
  if (c.addition_embed_type && (!c.addition_time_embed_dim || !c.projection_class_embeddings_input_dim || c.projection_class_embeddings_input_dim <= 6 * c.addition_time_embed_dim)) {
    bad('addition_embed_type "text_time" needs addition_time_embed_dim and projection_class_embeddings_input_dim (pooled text width + 6 x addition_time_embed_dim)');
  }
}

/** Sinusoidal timestep frequencies exp(-ln(10000)·i/(half - shift)), computed in float32 like PyTorch. */
export function timestepFrequencies(half: number, shift = 0): number[] {
  const c = Math.fround(-Math.log(10000));
  return Array.from({ length: half }, (_, i) => Math.fround(Math.exp(Math.fround(Math.fround(c * i) / (half - shift)))));
}

/** Builds the UNet graph: `sample`, `timestep`, `encoder_hidden_states` (and SDXL's `text_embeds`, `time_ids`) -> `out_sample`. */
export function buildUNet(config: UNetConfig, opts: BuildOptions = {}): Model {
  checkConfig(config);
  const opset = opts.opset ?? 17;
  if (opset < 14) throw new Error(`buildUNet: opset ${opset} is too old; use 14 or newer`);
  const graph = emptyGraph('unet');
  const b = new GraphBuilder(graph);
  const w = new WeightSource(opts.weights && opts.weights !== 'random' ? opts.weights : null, opts.seed ?? 0, 'buildUNet');
  const net = new Net(b, w, opset, opts.anonymousLinears ?? false);

  const tsKind = opts.timestep ?? 'int64-batch';
  const sample = b.input('sample', DataType.FLOAT, ['batch', config.in_channels, 'height', 'width']);
  const timestep = b.input('timestep', tsKind === 'int64-batch' ? DataType.INT64 : DataType.FLOAT, tsKind === 'float-scalar' ? [] : ['batch']);
  const context = b.input('encoder_hidden_states', DataType.FLOAT, ['batch', 'sequence', config.cross_attention_dim]);
  const added = config.addition_embed_type ? addedConditioningInputs(b, config) : undefined;
  const u = blockParts(net, config, context, timeEmbedding(net, config, sample, timestep, added));

  const down = downBlocks(u, conv2d(net, sample, 'conv_in', config.in_channels, config.block_out_channels[0], 3));
  const up = upBlocks(u, midBlock(u, down.h, down.hc), down.hc, down.skips);
  const h = silu(net, groupNorm(net, up.h, 'conv_norm_out', up.hc, u.groups, u.eps), 'conv_act');
  conv2d(net, h, 'conv_out', up.hc, config.out_channels, 3, 1, 'out_sample');
  graph.outputs.push({ name: 'out_sample', elemType: DataType.FLOAT, shape: ['batch', config.out_channels, 'height', 'width'] });
  const model = makeModel(graph, opset);
  model.metadata = { source: 'ddpo-studio buildUNet', config: JSON.stringify(config), parameters: String(w.params) };
  return model;
}

// What every block of one build shares: the layers, the text context, the activated time embedding and the config's settings.
interface BlockParts {
  net: Net;
  config: UNetConfig;
  context: string;
  tembAct: string;
  tembDim: number;
  groups: number;
  eps: number;
  linearProj: boolean;
  /** Transformer blocks per attention of each down block. */
  tLayers: number[];
  /** Heads of each down block. */
  heads: number[];
}

function blockParts(net: Net, config: UNetConfig, context: string, temb: { tembAct: string; tembDim: number }): BlockParts {
  const nb = config.block_out_channels.length;
  return {
    net, config, context, ...temb,
    groups: config.norm_num_groups ?? 32,
    eps: config.norm_eps ?? 1e-5,
    linearProj: config.use_linear_projection ?? false,
    tLayers: Array.isArray(config.transformer_layers_per_block) ? config.transformer_layers_per_block : new Array(nb).fill(config.transformer_layers_per_block ?? 1),
    heads: Array.isArray(config.attention_head_dim) ? config.attention_head_dim : new Array(nb).fill(config.attention_head_dim),
  };
}

// SDXL's `text_embeds [batch, pooled]` and `time_ids [batch, 6]` inputs.
function addedConditioningInputs(b: GraphBuilder, config: UNetConfig): { textEmbeds: string; timeIds: string } {
  const pooled = config.projection_class_embeddings_input_dim! - 6 * config.addition_time_embed_dim!;
  return { textEmbeds: b.input('text_embeds', DataType.FLOAT, ['batch', pooled]), timeIds: b.input('time_ids', DataType.FLOAT, ['batch', 6]) };
}

// Sinusoidal projection of a [N] vector of timesteps to [N, dim] (diffusers' Timesteps), under scope `scope`.
function sinusoidal(net: Net, config: UNetConfig, t: string, dim: number, scope: string): string {
  const b = net.b;
  const half = dim / 2;
  return b.within(scope, () => {
    const tf = b.op('Cast', [b.op('Unsqueeze', [t, b.constI64([1])])], { to: A.i(DataType.FLOAT) });
    const arg = b.op('Mul', [tf, b.constF(timestepFrequencies(half, config.freq_shift ?? 0), [1, half])]);
    const sin = b.op('Sin', [arg]);
    const cos = b.op('Cos', [arg]);
    return b.op('Concat', config.flip_sin_to_cos === false ? [sin, cos] : [cos, sin], { axis: A.i(-1) });
  });
}

// timesteps.expand(sample.shape[0]), the sinusoidal projection and the time embedding MLP (plus SDXL's add_embedding of
// [text_embeds, sinusoidal(time_ids)]); its SiLU shared by every resnet.
function timeEmbedding(net: Net, config: UNetConfig, sample: string, timestep: string, added?: { textEmbeds: string; timeIds: string }): { tembAct: string; tembDim: number } {
  const b = net.b;
  const ch = config.block_out_channels;
  const batch = b.op('Slice', [b.op('Shape', [sample]), b.constI64([0]), b.constI64([1])]);
  const t = b.op('Expand', [timestep, batch]);
  const proj = sinusoidal(net, config, t, ch[0], 'time_proj');
  const tembDim = ch[0] * 4;
  let temb = net.sub('time_embedding', () => gemm(net, silu(net, gemm(net, proj, 'linear_1', ch[0], tembDim), 'act'), 'linear_2', tembDim, tembDim));
  if (added) {
    const dim = config.addition_time_embed_dim!;
    const timeProj = sinusoidal(net, config, b.op('Reshape', [added.timeIds, b.constI64([-1])]), dim, 'add_time_proj');
    const addEmbeds = b.op('Concat', [added.textEmbeds, b.op('Reshape', [timeProj, b.constI64([-1, 6 * dim])])], { axis: A.i(-1) });
    const inDim = config.projection_class_embeddings_input_dim!;
    const aug = net.sub('add_embedding', () => gemm(net, silu(net, gemm(net, addEmbeds, 'linear_1', inDim, tembDim), 'act'), 'linear_2', tembDim, tembDim));
    temb = b.op('Add', [temb, aug]);
  }
  // every resnet applies SiLU to the same embedding; the exporter keeps one copy, in the first resnet's scope
  const tembAct = b.within('down_blocks.0', () => b.within('resnets.0', () => silu(net, temb, 'nonlinearity_1')));
  return { tembAct, tembDim };
}

// The down path from conv_in's output `h`: resnets (and cross-attention) per block, downsampling between blocks;
// returns the skip connections the up path concatenates.
function downBlocks(u: BlockParts, h: string): { h: string; hc: number; skips: Array<{ v: string; c: number }> } {
  const { net, config } = u;
  const ch = config.block_out_channels;
  const nb = ch.length;
  const skips: Array<{ v: string; c: number }> = [{ v: h, c: ch[0] }];
  let hc = ch[0];
  for (let i = 0; i < nb; i++) {
    const cross = config.down_block_types[i] === 'CrossAttnDownBlock2D';
    net.sub(`down_blocks.${i}`, () => {
      for (let j = 0; j < config.layers_per_block; j++) {
        h = resnet(net, h, u.tembAct, u.tembDim, `resnets.${j}`, hc, ch[i], u.groups, u.eps);
        hc = ch[i];
        if (cross) h = attn(net, h, u.context, `attentions.${j}`, hc, u.heads[i], config.cross_attention_dim, u.tLayers[i], u.groups, u.linearProj);
        skips.push({ v: h, c: hc });
      }
      if (i < nb - 1) { h = downsample(net, h, hc); skips.push({ v: h, c: hc }); }
    });
  }
  return { h, hc, skips };
}

function midBlock(u: BlockParts, h: string, hc: number): string {
  const { net, config } = u;
  return net.sub('mid_block', () => {
    h = resnet(net, h, u.tembAct, u.tembDim, 'resnets.0', hc, hc, u.groups, u.eps);
    h = attn(net, h, u.context, 'attentions.0', hc, u.heads[config.block_out_channels.length - 1], config.cross_attention_dim, u.tLayers[u.tLayers.length - 1], u.groups, u.linearProj);
    return resnet(net, h, u.tembAct, u.tembDim, 'resnets.1', hc, hc, u.groups, u.eps);
  });
}

// The up path: each block concatenates a skip connection before each resnet, upsampling between blocks.
function upBlocks(u: BlockParts, h: string, hc: number, skips: Array<{ v: string; c: number }>): { h: string; hc: number } {
  const { net, config } = u;
  const b = net.b;
  const nb = config.block_out_channels.length;
  const rch = [...config.block_out_channels].reverse();
  const rheads = [...u.heads].reverse();
  const rlayers = [...u.tLayers].reverse();
  for (let i = 0; i < nb; i++) {
    const cross = config.up_block_types[i] === 'CrossAttnUpBlock2D';
    net.sub(`up_blocks.${i}`, () => {
      for (let j = 0; j <= config.layers_per_block; j++) {
        const skip = skips.pop();
        if (!skip) throw new Error('buildUNet: ran out of skip connections; the block lists are inconsistent');
        const cat = b.op('Concat', [h, skip.v], { axis: A.i(1) });
        h = resnet(net, cat, u.tembAct, u.tembDim, `resnets.${j}`, hc + skip.c, rch[i], u.groups, u.eps);
        hc = rch[i];
        if (cross) h = attn(net, h, u.context, `attentions.${j}`, hc, rheads[i], config.cross_attention_dim, rlayers[i], u.groups, u.linearProj);
      }
      if (i < nb - 1) h = upsample(net, h, hc);
    });
  }
  return { h, hc };
}

function attn(net: Net, h: string, context: string, name: string, c: number, heads: number, crossDim: number, layers: number, groups: number, lin: boolean): string {
  return net.sub(name, () => transformer2d(net, h, context, { channels: c, heads, crossDim, layers, groups, useLinearProjection: lin }));
}
