/**
 * Diffusion-DPO's loss in float64, written from the formula of Wallace et al. 2023 (the oracle the training graph is
 * checked against; no PyTorch run is available here), and its gradient with respect to the policy's predictions.
 * Rows are laid out as the graph takes them: the B preferred images first, then the B rejected ones.
 */

/** What the formula gives for B pairs. */
export interface DpoOracle {
  loss: number;
  /** −β/2·((‖ε_w − ε_θ‖² − ‖ε_w − ε_ref‖²) − (‖ε_l − ε_θ‖² − ‖ε_l − ε_ref‖²)) per pair, norms as per-pixel means. */
  margins: number[];
  modelMse: number;
  refMse: number;
  /** d loss / d pred (the reference carries no gradient). */
  gradPred: Float64Array;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

// per-row mean squared error of `pred` against `target`
function rowMse(pred: ArrayLike<number>, target: ArrayLike<number>, rows: number): number[] {
  const per = pred.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let s = 0;
    for (let i = r * per; i < (r + 1) * per; i++) { const d = pred[i] - target[i]; s += d * d; }
    return s / per;
  });
}

/** loss = mean over pairs of −log σ(margin), from the policy's and the reference's predictions of 2B rows. */
export function diffusionDpoOracle(pred: ArrayLike<number>, refPred: ArrayLike<number>, target: ArrayLike<number>, beta: number, pairs: number): DpoOracle {
  const rows = 2 * pairs, per = pred.length / rows;
  const model = rowMse(pred, target, rows), ref = rowMse(refPred, target, rows);
  const margins = Array.from({ length: pairs }, (_, k) => -0.5 * beta * ((model[k] - ref[k]) - (model[pairs + k] - ref[pairs + k])));
  const loss = margins.reduce((s, m) => s + softplus(-m), 0) / pairs;
  const gradPred = new Float64Array(pred.length);
  for (let r = 0; r < rows; r++) {
    const k = r % pairs;
    // dL/dm_k = −σ(−m_k)/B; dm_k/dmse_r = ∓β/2 (winner −, loser +); dmse_r/dpred_i = 2(pred_i − target_i)/per
    const dm = r < pairs ? -0.5 * beta : 0.5 * beta;
    const coef = (-sigmoid(-margins[k]) / pairs) * dm * (2 / per);
    for (let i = r * per; i < (r + 1) * per; i++) gradPred[i] = coef * (pred[i] - target[i]);
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return { loss, margins, modelMse: mean(model), refMse: mean(ref), gradPred };
}
