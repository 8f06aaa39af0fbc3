import { btLoss, sigmoid, type PairExample, type RewardHead } from './head';

/** One reliability bin: predictions for the favoured side in [low, high). */
export interface CalibrationBin {
  low: number;
  high: number;
  n: number;
  meanPredicted: number;
  observed: number;
}

/** How well a head predicts a set of comparisons. */
export interface PairMetrics {
  /** Comparisons evaluated (ties included). */
  n: number;
  /** Comparisons with a winner; accuracy is over these. */
  decisive: number;
  accuracy: number;
  /** Mean BT log-loss (nats), ties as half-wins. */
  logLoss: number;
  /** Expected calibration error over the bins. */
  ece: number;
  calibration: CalibrationBin[];
}

/** Accuracy, log-loss and calibration of a head on comparisons. */
export function pairMetrics(head: RewardHead, xs: PairExample[], bins = 5): PairMetrics {
  // Calibration is read from the favoured side: p' = max(p, 1-p) in [0.5, 1], outcome 1 if it won, 0.5 for a tie.
  const cal = Array.from({ length: bins }, (_, i) => ({ low: 0.5 + (0.5 * i) / bins, high: 0.5 + (0.5 * (i + 1)) / bins, n: 0, sp: 0, so: 0 }));
  let loss = 0, decisive = 0, correct = 0;
  for (const ex of xs) {
    const d = head.score(ex.left) - head.score(ex.right);
    loss += btLoss(d, ex.y);
    const p = sigmoid(d);
    if (ex.y !== 0.5) {
      decisive++;
      if (p === 0.5) correct += 0.5; // no preference: half right, whichever side won
      else if ((p > 0.5) === (ex.y > 0.5)) correct++;
    }
    const pf = Math.max(p, 1 - p);
    const won = p >= 0.5 ? ex.y : 1 - ex.y;
    const b = cal[Math.min(bins - 1, Math.floor(((pf - 0.5) / 0.5) * bins))];
    b.n++; b.sp += pf; b.so += won;
  }
  const calibration = cal.map((b) => ({ low: b.low, high: b.high, n: b.n, meanPredicted: b.n ? b.sp / b.n : NaN, observed: b.n ? b.so / b.n : NaN }));
  const ece = calibration.reduce((s, b) => s + (b.n ? (b.n / xs.length) * Math.abs(b.meanPredicted - b.observed) : 0), 0);
  return { n: xs.length, decisive, accuracy: decisive ? correct / decisive : NaN, logLoss: xs.length ? loss / xs.length : NaN, ece, calibration };
}
