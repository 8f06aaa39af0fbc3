// Reward-head training through our ONNX autodiff: the head and its Bradley–Terry loss are built as an
// ONNX graph, differentiated by src/core/autodiff and run by onnxruntime, so the reward model trains on
// the same engine (and the same execution providers) as the diffusion LoRA.
import type * as ort from 'onnxruntime-node';
import { buildGradientGraph } from '../autodiff/gradient';
import { GraphBuilder } from '../onnx/builder';
import { DataType, emptyGraph, makeModel, type Model } from '../onnx/ir';
import { specialize } from '../onnx/specialize';
import { appendBradleyTerryLoss } from '../train/losses';
import { createSession, runModel, type FeedValue } from '../runtime/ortRun';
import type { HeadParams, PairExample, RewardHead } from './head';
import { headAdamW, stepHead, type HeadTrainer } from './trainer';
import type { AdamW, AdamWConfig } from '../train/adamw';

const OPSET = 17;

/** score(X) for a batch [B, D] of standardised rows, as the head computes it one row at a time. */
function appendScore(b: GraphBuilder, head: RewardHead, x: string): string {
  const std = b.op('Div', [b.op('Sub', [x, b.constF(head.mean)]), b.constF(head.std)]);
  if (head.kind === 'linear') return b.op('MatMul', [std, b.op('Transpose', ['w'])]);
  // r = w2 · gelu_tanh(W1 x̂ + b1), gelu_tanh(a) = a/2 (1 + tanh(k (a + 0.044715 a³)))
  const a = b.op('Add', [b.op('MatMul', [std, b.op('Transpose', ['w1'])]), 'b1']);
  const cube = b.op('Mul', [b.op('Mul', [a, a]), a]);
  const inner = b.op('Mul', [b.scalar(Math.sqrt(2 / Math.PI)), b.op('Add', [a, b.op('Mul', [b.scalar(0.044715), cube])])]);
  const g = b.op('Mul', [b.op('Mul', [b.scalar(0.5), a]), b.op('Add', [b.scalar(1), b.op('Tanh', [inner])])]);
  return b.op('MatMul', [g, b.op('Transpose', ['w2'])]);
}

/** The head's mean Bradley–Terry loss over a batch of `batch` comparisons, with its parameters as graph inputs. */
export function headLossModel(head: RewardHead, batch: number): Model {
  const graph = emptyGraph('reward_head_bt');
  const b = new GraphBuilder(graph);
  const d = head.inputDim;
  const left = b.input('left', DataType.FLOAT, [batch, d]);
  const right = b.input('right', DataType.FLOAT, [batch, d]);
  const y = b.input('y', DataType.FLOAT, [batch]);
  for (const [name, p] of head.params()) b.input(name, DataType.FLOAT, p.shape);
  const flat = (s: string) => b.op('Reshape', [s, b.constI64([batch])]);
  // a warm start's prior is a fixed part of each score: fed per row, added, never differentiated
  const scored = (x: string, side: 'left' | 'right') => (head.offset ? b.op('Add', [flat(appendScore(b, head, x)), b.input(`${side}_offset`, DataType.FLOAT, [batch])]) : flat(appendScore(b, head, x)));
  const { loss } = appendBradleyTerryLoss(b, scored(left, 'left'), scored(right, 'right'), y, OPSET);
  b.output(loss, 'loss', DataType.FLOAT, []);
  return makeModel(graph, OPSET);
}

/** Trains a head with gradients from the autodiff graph (one onnxruntime session per batch size) and AdamW. */
export class AutodiffHeadTrainer implements HeadTrainer {
  private sessions = new Map<number, Promise<{ model: Model; session: ort.InferenceSession; grads: Record<string, string> }>>();
  private adam: AdamW;
  constructor(readonly head: RewardHead, opts: AdamWConfig) {
    this.adam = headAdamW(opts);
  }

  private session(batch: number) {
    let s = this.sessions.get(batch);
    if (!s) {
      s = (async () => {
        const forward = headLossModel(this.head, batch);
        const { shapes } = specialize(forward, {});
        const { model, grads } = buildGradientGraph(forward, { shapes, wrt: [...this.head.params().keys()], loss: 'loss', keepForwardOutputs: true });
        return { model, session: await createSession(model, { threads: 1 }), grads };
      })();
      this.sessions.set(batch, s);
    }
    return s;
  }

  /** Loss and parameter gradients of a batch, computed by the gradient graph. */
  async lossAndGrad(batch: PairExample[]): Promise<{ loss: number; grads: HeadParams }> {
    const n = batch.length, d = this.head.inputDim;
    const stack = (side: 'left' | 'right'): FeedValue => {
      const data = new Float32Array(n * d);
      batch.forEach((ex, i) => data.set(ex[side], i * d));
      return { dims: [n, d], data };
    };
    const feeds: Record<string, FeedValue> = { left: stack('left'), right: stack('right'), y: { dims: [n], data: Float32Array.from(batch, (e) => e.y) } };
    const offset = this.head.offset?.bind(this.head);
    if (offset) for (const side of ['left', 'right'] as const) feeds[`${side}_offset`] = { dims: [n], data: Float32Array.from(batch, (e) => offset(e[side])) };
    for (const [k, p] of this.head.params()) feeds[k] = { dims: p.shape, data: p.data };
    const { model, session, grads } = await this.session(n);
    const out = await runModel(session, model, feeds);
    const g: HeadParams = new Map([...this.head.params()].map(([k, p]) => [k, { shape: p.shape, data: out.get(grads[k])!.data }]));
    return { loss: out.get('loss')!.data[0], grads: g };
  }

  async step(batch: PairExample[]): Promise<number> {
    const { loss, grads } = await this.lossAndGrad(batch);
    stepHead(this.adam, this.head, grads);
    return loss;
  }
}
