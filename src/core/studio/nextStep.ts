/**
 * Where a person is in the loop (rate → train the reward model → fine-tune → compare blind → rate more) and the one
 * step that moves them on, read from the experiment's summary. The dashboard shows it as a button.
 */
import type { LoopView, TrainingAlgorithm } from '../../protocol';
import { latestResult, ratedThrough } from './compare';
import type { RunState } from './runState';
import type { ExperimentSummary } from './summary';

/** The loop's steps, each the studio command of the same name. */
export const LOOP_STEPS = ['rate', 'trainReward', 'startFineTune', 'compare'] as const;
/** One step of the loop. */
export type LoopStep = (typeof LOOP_STEPS)[number];

/** True for a step's name (a webview's message is checked with it). */
export const isLoopStep = (s: unknown): s is LoopStep => typeof s === 'string' && (LOOP_STEPS as readonly string[]).includes(s);

/** Ratings before a reward model is worth training: enough that some are held out to measure it. */
export const RATINGS_TO_TRAIN = 20;
/** New ratings after which the reward model is worth training again. */
export const RATINGS_TO_RETRAIN = 10;

/** The button's text for each step. */
export const STEP_LABELS: Record<LoopStep, string> = {
  rate: 'Rate',
  trainReward: 'Train Reward Model',
  startFineTune: 'Start Fine-Tuning',
  compare: 'Compare',
};

/** The next step and why; no step while fine-tuning runs (the dashboard's Stop is the only action then). */
export interface NextStep {
  step?: LoopStep;
  why: string;
}

/** What the next step depends on besides the summary. */
export interface NextStepContext {
  /** The reward ddpo.json names (undefined: none yet; the studio's presets fine-tune on the learned one). */
  reward?: string;
  /** The run the person is looking at (default DDPO). */
  algorithm?: TrainingAlgorithm;
}

/**
 * The step that moves the person on from where `s` says they are, for the run of `c.algorithm`. DDPO on a reward other
 * than `learned` needs no ratings, so the loop skips rating and training the reward model until the person chooses
 * their own taste; Diffusion-DPO learns from the rated pairs themselves, so it needs ratings but no reward model.
 */
export function nextStep(s: ExperimentSummary, c: NextStepContext = {}): NextStep {
  const algorithm = c.algorithm ?? 'ddpo';
  const dpo = algorithm === 'diffusion-dpo';
  const run: Pick<RunState, 'state' | 'checkpoints'> = dpo ? s.dpoRun ?? { state: 'idle', checkpoints: [] } : s.run;
  const name = dpo ? 'Diffusion-DPO' : 'Fine-tuning';
  if (run.state === 'running') return { why: `${name} is running; once it has a checkpoint, compare it with the base model.` };
  const learned = c.reward === undefined || c.reward === 'learned';
  if (dpo && s.ratings < RATINGS_TO_TRAIN) return rateMore(s, 'Diffusion-DPO has enough of your choices to learn from');
  if (learned && !dpo) {
    const rewardStep = rewardModelStep(s);
    if (rewardStep) return rewardStep;
  }
  const latest = run.checkpoints.at(-1);
  if (run.state === 'idle' || latest === undefined) {
    const why = dpo ? `Fine-tune the image model with Diffusion-DPO on your ${s.ratings} rated pairs (no reward model needed).`
      : learned ? 'The reward model is trained: fine-tune the image model towards it.' : `Fine-tune the image model towards the built-in reward ${c.reward} (ddpo.json); it needs no ratings.`;
    return { step: 'startFineTune', why };
  }
  if (!s.comparisons.some((x) => x.b.kind === 'checkpoint' && x.b.algorithm === algorithm && x.b.epoch === latest && ratedThrough(x))) {
    return { step: 'compare', why: `Compare ${dpo ? 'Diffusion-DPO ' : ''}epoch ${latest + 1} with the base model, blind, to see whether fine-tuning learned your taste.` };
  }
  if (dpo) return { step: 'rate', why: 'Compared: rate more pairs, then fine-tune again on all of them.' };
  return { step: 'rate', why: learned ? 'Compared: rate more pairs to sharpen the reward model, then train it and fine-tune again.' : 'Compared: to teach it your own taste, rate pairs, train the reward model and set "reward": "learned" in ddpo.json.' };
}

// Rate until there is enough to train on, then train, and train again once enough new ratings came in.
function rewardModelStep(s: ExperimentSummary): NextStep | undefined {
  if (!s.reward && s.ratings < RATINGS_TO_TRAIN) return rateMore(s, 'the reward model has enough to learn your taste');
  if (!s.reward) return { step: 'trainReward', why: `${s.ratings} pairs rated: train the reward model on them.` };
  const fresh = s.ratings - (s.reward.ratings ?? s.ratings);
  if (fresh >= RATINGS_TO_RETRAIN) return { step: 'trainReward', why: `${fresh} pairs rated since the reward model was trained: train it again.` };
  return undefined;
}

// Rate up to the ratings a first training needs, `so` what.
function rateMore(s: ExperimentSummary, so: string): NextStep {
  const more = RATINGS_TO_TRAIN - s.ratings;
  return { step: 'rate', why: `Rate ${more} more ${more === 1 ? 'pair' : 'pairs'} (${s.ratings} of ${RATINGS_TO_TRAIN}) so ${so}.` };
}

/**
 * What a panel's walkthrough shows for the run of `c.algorithm`: where the person is in the loop (its fine-tuning
 * figures are those of `shown`, that run's state) and the next step with its button's text.
 */
export function loopView(s: ExperimentSummary, shown: RunState, c: NextStepContext & { algorithm: TrainingAlgorithm }): LoopView {
  const next = nextStep(s, c);
  const win = latestResult(s.comparisons);
  return {
    rated: s.ratings,
    rewardAccuracy: s.reward && Number.isFinite(s.reward.accuracy) ? s.reward.accuracy : undefined,
    epochsDone: c.algorithm === 'diffusion-dpo' ? (shown.dpoPoints ?? []).length : shown.points.length,
    numEpochs: shown.numEpochs,
    winRate: win?.winRate.rate,
    next: { ...next, label: next.step && STEP_LABELS[next.step] },
  };
}
