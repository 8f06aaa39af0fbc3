import { btLoss, featureStats, LinearHead, MlpHead, sigmoid, type HeadParams, type PairExample, type RewardHead } from './head';
import { mulberry32, shuffled } from '../random';
import { AdamW, type AdamWConfig } from '../train/adamw';

/** One optimisation step on a batch of comparisons; returns the batch's mean loss before the update. */
export interface HeadTrainer {
  readonly head: RewardHead;
  step(batch: PairExample[]): number | Promise<number>;
}

/** Mean Bradley–Terry loss over a batch and its gradient with respect to the head's parameters. */
export function btLossAndGrad(head: RewardHead, batch: PairExample[]): { loss: number; grads: HeadParams } {
  const grads: HeadParams = new Map([...head.params()].map(([k, p]) => [k, { shape: p.shape, data: new Float32Array(p.data.length) }]));
  let loss = 0;
  for (const ex of batch) {
    const d = head.score(ex.left) - head.score(ex.right);
    loss += btLoss(d, ex.y);
    const g = (sigmoid(d) - ex.y) / batch.length; // dL/dd
    head.backward(ex.left, g, grads);
    head.backward(ex.right, -g, grads);
  }
  return { loss: loss / batch.length, grads };
}

/** AdamW for a reward head: decoupled weight decay on its weights, none on its biases (`b1`, …). */
export function headAdamW(cfg: AdamWConfig): AdamW {
  return new AdamW({ ...cfg, noDecay: (name) => name.startsWith('b') });
}

/** One AdamW step of the head's parameters from their gradients (same keys). */
export function stepHead(adam: AdamW, head: RewardHead, grads: HeadParams): void {
  const data = (ps: HeadParams) => new Map([...ps].map(([k, p]) => [k, p.data]));
  adam.update(data(head.params()), data(grads));
}

/** Plain-TypeScript trainer: analytic gradients + AdamW (used where thousands of small fits run, e.g. simulations). */
export class AnalyticAdamWTrainer implements HeadTrainer {
  private adam: AdamW;
  constructor(readonly head: RewardHead, opts: AdamWConfig) {
    this.adam = headAdamW(opts);
  }
  step(batch: PairExample[]): number {
    const { loss, grads } = btLossAndGrad(this.head, batch);
    stepHead(this.adam, this.head, grads);
    return loss;
  }
}

/** Options for fitHead. */
export interface FitOptions {
  /** AdamW learning rate (default 0.02 for a linear head, 0.003 for an MLP). */
  lr?: number;
  /** AdamW weight decay on the head's weights (default 0.05). */
  weightDecay?: number;
  kind?: 'linear' | 'mlp';
  hidden?: number;
  maxEpochs?: number;
  /** Stop after this many epochs without a better validation loss. */
  patience?: number;
  /**
   * L1 penalty on a linear head's weights (proximal soft-threshold by lr·l1 after each step; 0 = none). It keeps
   * the few features that explain the ratings and zeroes the merely correlated ones, which a policy could push instead.
   */
  l1?: number;
  batchSize?: number;
  seed?: number;
  /** Wraps the fresh head before training (a warm start adds its prior's score to it); the wrapper is what is returned. */
  wrap?: (head: RewardHead) => RewardHead;
  /** Swap in another trainer (e.g. the autodiff-backed one); defaults to AnalyticAdamWTrainer. */
  makeTrainer?: (head: RewardHead, opts: AdamWConfig) => HeadTrainer;
}

/** What fitHead returns: the head at its best validation epoch and the loss history. */
export interface FitResult {
  head: RewardHead;
  bestEpoch: number;
  history: { epoch: number; trainLoss: number; valLoss: number }[];
}

/** Mean BT loss of a head over examples (NaN when empty). */
export function meanLoss(head: RewardHead, xs: PairExample[]): number {
  let s = 0;
  for (const ex of xs) s += btLoss(head.score(ex.left) - head.score(ex.right), ex.y);
  return s / xs.length;
}

/**
 * Early-stop on a validation split, then retrain from scratch on train+val for the best epoch count,
 * so every rating shapes the final model.
 */
export async function fitHeadUsingAll(train: PairExample[], val: PairExample[], opts: FitOptions = {}): Promise<FitResult & { validation: FitResult }> {
  const validation = await fitHead(train, val, opts);
  if (val.length === 0) return { ...validation, validation };
  const all = await fitHead(train.concat(val), [], { ...opts, maxEpochs: Math.max(1, validation.bestEpoch), patience: Infinity });
  return { ...all, bestEpoch: validation.bestEpoch, validation };
}

/** Train a head with minibatch AdamW, early stopping on validation log-loss (training loss when val is empty). */
export async function fitHead(train: PairExample[], val: PairExample[], opts: FitOptions = {}): Promise<FitResult> {
  if (train.length === 0) throw new Error('no rated pairs to train on: rate some pairs first (skips do not count)');
  const { kind = 'linear', hidden = 32, maxEpochs = 400, patience = 25, batchSize = 32, seed = 0 } = opts;
  const rng = mulberry32(seed);
  const { mean, std } = featureStats(train.flatMap((e) => [e.left, e.right]));
  const fresh: RewardHead = kind === 'mlp' ? MlpHead.init(mean, std, hidden, rng) : new LinearHead(mean, std);
  const head = opts.wrap ? opts.wrap(fresh) : fresh;
  const adam: AdamWConfig = { lr: opts.lr ?? (kind === 'mlp' ? 0.003 : 0.02), weightDecay: opts.weightDecay ?? 0.05 };
  const trainer = (opts.makeTrainer ?? ((h, o) => new AnalyticAdamWTrainer(h, o)))(head, adam);
  const snapshot = () => new Map([...head.params()].map(([k, p]) => [k, p.data.slice()]));
  let best = { loss: Infinity, epoch: 0, params: snapshot() };
  const history: FitResult['history'] = [];
  for (let epoch = 1; epoch <= maxEpochs; epoch++) {
    let sum = 0, n = 0;
    const order = shuffled(train, rng);
    for (let i = 0; i < order.length; i += batchSize) {
      const batch = order.slice(i, i + batchSize);
      sum += (await trainer.step(batch)) * batch.length;
      n += batch.length;
      if (opts.l1 && head.kind === 'linear') softThreshold(head.params().get('w')!.data, adam.lr * opts.l1);
    }
    const valLoss = val.length ? meanLoss(head, val) : sum / n;
    history.push({ epoch, trainLoss: sum / n, valLoss });
    if (val.length === 0 && epoch === maxEpochs && !Number.isFinite(patience)) best = { loss: valLoss, epoch, params: snapshot() };
    else if (valLoss < best.loss - 1e-6) best = { loss: valLoss, epoch, params: snapshot() };
    else if (epoch - best.epoch >= patience) break;
  }
  for (const [k, p] of head.params()) p.data.set(best.params.get(k)!);
  return { head, bestEpoch: best.epoch, history };
}

// The proximal step of an L1 penalty: shrink every weight towards 0 by t, and stop at 0.
function softThreshold(w: Float32Array, t: number): void {
  for (let i = 0; i < w.length; i++) w[i] = Math.sign(w[i]) * Math.max(0, Math.abs(w[i]) - t);
}
