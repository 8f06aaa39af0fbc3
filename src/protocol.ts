/**
 * Every message between webview, extension host and worker: one union per direction, plus runtime
 * validators for what arrives from another process or a webview. Pure TypeScript (no node, DOM or vscode),
 * so the webview bundle can import it too.
 *
 * To add a worker job: add an entry to `WorkerRequests` (params, result, progress), then a handler in
 * src/worker/handlers/ and register it in src/worker/handlers/index.ts. The type checker lists what is missing.
 * To add a webview message: add it to its panel's union and its field shape to that panel's table in
 * `PANEL_TO_HOST_SHAPES`; a panel's `switch` then lists what is missing.
 */

/** Values of the `ddpoStudio.executionProvider` setting. */
export const EXECUTION_PROVIDER_SETTINGS = ['auto', 'cuda', 'webgpu', 'dml', 'coreml', 'cpu'] as const;
/** One `ddpoStudio.executionProvider` value. */
export type ExecutionProviderSetting = (typeof EXECUTION_PROVIDER_SETTINGS)[number];

/** The fine-tuning algorithms: DDPO (against a reward model) and Diffusion-DPO (on the rated pairs directly). */
export const TRAINING_ALGORITHMS = ['ddpo', 'diffusion-dpo'] as const;
/** One of {@link TRAINING_ALGORITHMS}. */
export type TrainingAlgorithm = (typeof TRAINING_ALGORITHMS)[number];

/** Names of the algorithms for people. */
export const ALGORITHM_NAMES: Readonly<Record<TrainingAlgorithm, string>> = { ddpo: 'DDPO', 'diffusion-dpo': 'Diffusion-DPO' };

/** True when `x` is one of {@link TRAINING_ALGORITHMS}. */
export function isTrainingAlgorithm(x: unknown): x is TrainingAlgorithm {
  return (TRAINING_ALGORITHMS as readonly unknown[]).includes(x);
}

/** One side of a blind comparison: the base model, or a checkpoint (after `epoch`, 0-based) of one of the experiment's runs. */
export type CompareSide = { kind: 'base' } | { kind: 'checkpoint'; algorithm: TrainingAlgorithm; epoch: number };

/** What the worker reports about itself and this machine. */
export interface WorkerStatus {
  pid: number;
  node: string;
  platform: string;
  arch: string;
  /** onnxruntime-node version, or null when it failed to load (see onnxruntimeError). */
  onnxruntime: string | null;
  onnxruntimeError?: string;
  /** Execution providers onnxruntime lists on this machine and whose binaries are present, e.g. ["cpu", "webgpu"]. */
  executionProviders: string[];
  /** Listed by onnxruntime but their libraries are not installed (e.g. CUDA without its provider library). */
  missingExecutionProviders: string[];
  /** The provider a model opens on given the setting (a one-node model is opened to find out), or 'none'. */
  chosenExecutionProvider: string;
  /** Which provider opened and why the preferred ones did not, e.g. "execution provider: cpu (webgpu failed: ...)". */
  providerChoice?: string;
  /** The reward backbone a job of this worker opened last, where it ran and when; absent before any. */
  rewardBackbone?: string;
  uptimeSeconds: number;
}

/** Progress every job may report; job kinds may add fields. */
export interface JobProgress {
  message?: string;
  /** 0..1 when known. */
  fraction?: number;
}

/**
 * Worker request kinds: params sent, result returned, progress events emitted while it runs. Jobs that open models
 * take `executionProvider` (the user's setting, 'auto' when absent); the worker logs which provider each model opened on.
 */
export interface WorkerRequests {
  /** Cheap liveness check; does not load onnxruntime. */
  ping: { params: Record<string, never>; result: { pid: number; uptimeSeconds: number }; progress: JobProgress };
  /** Versions and execution providers; loads onnxruntime on first use. */
  status: { params: { executionProvider?: ExecutionProviderSetting }; result: WorkerStatus; progress: JobProgress };
  /** A small long job (sleeps `steps` times) that exercises progress and cancellation end to end. */
  selfTest: { params: { steps: number; delayMs: number }; result: { completed: number }; progress: JobProgress & { step: number; total: number } };
  /** Generates the next `count` pairs into `<exp>/samples/<pairId>/`; progress carries each finished pair. */
  generatePairs: { params: { experimentDir: string; modelDir: string; count: number; executionProvider?: ExecutionProviderSetting }; result: { pairs: PairInfo[] }; progress: JobProgress & { pair?: PairInfo } };
  /** Appends one rating durably (replies only after fsync) with the log as it now reads; `compareId` targets a blind comparison's log. */
  rate: { params: RateParams; result: RatingLogView & { ratingId: string }; progress: JobProgress };
  /** Retracts a rating (appends a retraction); replies with the log as it now reads. */
  undo: { params: { experimentDir: string; compareId?: string; ratingId: string }; result: RatingLogView; progress: JobProgress };
  /** Trains the experiment's reward model from its ratings, on its reward backbone (downloaded first when it is a Hub repo not yet cached). */
  trainReward: { params: { experimentDir: string; executionProvider?: ExecutionProviderSetting }; result: RewardSummary; progress: JobProgress };
  /** Runs DDPO or Diffusion-DPO fine-tuning (or resumes it; default: ddpo.json's algorithm); progress carries each finished epoch's metrics. */
  startFineTune: { params: { experimentDir: string; modelDir: string; resume: boolean; algorithm?: TrainingAlgorithm; executionProvider?: ExecutionProviderSetting; rewardScript?: ConfirmedRewardScript }; result: { firstEpoch: number; lastEpoch: number; stoppedEarly?: string; algorithm: TrainingAlgorithm }; progress: FineTuneProgress };
  /** Stops the running fine-tuning of an experiment (it keeps its checkpoints and can be resumed). */
  stopFineTune: { params: { experimentDir: string }; result: { stopped: boolean }; progress: JobProgress };
  /**
   * Generates images of two models (A and B: the base model or any run's checkpoint) for held-out prompts and seeds,
   * to be rated blind; without `a` and `b`, the base model against the DDPO checkpoint of `epoch` (default the newest).
   */
  compare: { params: { experimentDir: string; modelDir: string; epoch?: number; a?: CompareSide; b?: CompareSide; seedsPerPrompt: number; executionProvider?: ExecutionProviderSetting }; result: { compareId: string; pairs: number }; progress: JobProgress };
  /** Copies a checkpoint's LoRA (of the DDPO run, or of `algorithm`'s) to `<exp>/exports/`. */
  exportLora: { params: { experimentDir: string; epoch?: number; algorithm?: TrainingAlgorithm; format: 'kohya' | 'peft' }; result: { file: string; epoch: number }; progress: JobProgress };
  /** Downloads a Hub model (a Stable Diffusion ONNX pipeline, or with `kind` 'backbone' a reward backbone) into the model cache; returns its folder. */
  downloadModel: { params: { repo: string; cacheDir: string; kind?: 'pipeline' | 'backbone' }; result: { dir: string }; progress: JobProgress };
  /** `ddpo doctor` on a model folder: what it is, whether it samples and trains here, and what to do where it cannot. */
  checkModel: { params: { modelDir: string; ddpo?: Record<string, unknown> }; result: ModelReport; progress: JobProgress };
}

/** One thing a model cannot do here (error) or may do badly (warning), and what a person can do about it. */
export interface ModelFinding {
  area: 'folder' | 'model' | 'sample' | 'train' | 'memory';
  level: 'error' | 'warning';
  message: string;
  fix: string;
}

/** What `ddpo doctor` finds in a model folder: labelled facts (model, exporter, shapes, ...), the two verdicts, and the findings. */
export interface ModelReport {
  dir: string;
  facts: Array<{ label: string; value: string }>;
  canSample: boolean;
  canTrain: boolean;
  findings: ModelFinding[];
}

/** A reward script the person confirmed in the studio: its path and the sha256 of the content they agreed to run. */
export interface ConfirmedRewardScript {
  file: string;
  sha256: string;
}

/** A generated pair of images (paths relative to the experiment folder). */
export interface PairInfo {
  pairId: string;
  prompt: string;
  a: string;
  b: string;
  seeds: [number, number];
}

/** One rating as the host sends it to the worker; image paths are relative to the log's folder. */
export interface RateParams {
  experimentDir: string;
  compareId?: string;
  pairId: string;
  prompt: string;
  left: string;
  right: string;
  choice: Choice;
  sideOrder: 'ab' | 'ba';
  repeatOf?: string;
  elapsedMs?: number;
}

/** A pair in the rating queue, sides chosen (image paths relative to the log's folder); never sent to a webview. */
export interface QueuedPair {
  /** What the webview calls it: the pair id, or `<pairId>~<repeated rating id>` for a repeat. */
  id: string;
  pairId: string;
  prompt: string;
  left: string;
  right: string;
  sideOrder: 'ab' | 'ba';
  repeatOf?: string;
}

/**
 * What the rating panel needs from a ratings log, worked out by whoever last read it (the worker, after each rating
 * and undo), so the host redraws from the reply instead of reading the log again.
 */
export interface RatingLogView {
  /** Ratings that count (retractions applied). */
  rated: number;
  /** Per-answer consistency from side-swapped repeats (0..1), null before any repeat. */
  consistency: number | null;
  repeats: number;
  /** The newest rating, which Undo takes back; null when nothing is rated. */
  last: { id: string; pairId: string; repeatOf?: string } | null;
  /** Pairs that have a rating: the queue leaves them out. */
  ratedPairs: string[];
  /** Side-swapped repeats of earlier ratings that are due now: the queue shows them first. */
  dueRepeats: QueuedPair[];
  /** Blind comparisons only: B's win rate over A. */
  winRate?: WinRateView;
}

/** What a trained reward model reports. */
export interface RewardSummary {
  accuracy: number;
  heldOut: number;
  comparisons: number;
  summary: string;
  /** The backbone it was trained on, e.g. "Xenova/clip-vit-large-patch14 (image + text)". */
  backbone: string;
  /** With a prior: its held-out accuracy and cold vs warm at a few rating counts, in one line. */
  warmStart?: string;
}

/** Per-epoch numbers the dashboard charts for a DDPO run. */
export interface EpochPoint {
  epoch: number;
  rewardMean: number;
  rewardStd: number;
  approxKl: number;
  clipfrac: number;
}

/** Per-epoch numbers the dashboard charts for a Diffusion-DPO run. */
export interface DpoEpochPoint {
  epoch: number;
  loss: number;
  /** Share of the epoch's training pairs with a positive DPO margin. */
  implicitAcc: number;
  /** The same on the held-out pairs, null without any. */
  heldOutAcc: number | null;
  marginMean: number;
}

/** Progress of a fine-tuning run. */
export interface FineTuneProgress extends JobProgress {
  epoch: number;
  numEpochs: number;
  phase: string;
  /** Set when a DDPO epoch has just finished. */
  finished?: EpochPoint;
  /** Set when a Diffusion-DPO epoch has just finished. */
  finishedDpo?: DpoEpochPoint;
}

/** Name of one worker request kind. */
export type WorkerRequestKind = keyof WorkerRequests;
/** Params of request kind K. */
export type ParamsOf<K extends WorkerRequestKind> = WorkerRequests[K]['params'];
/** Result of request kind K. */
export type ResultOf<K extends WorkerRequestKind> = WorkerRequests[K]['result'];
/** Progress payload of request kind K. */
export type ProgressOf<K extends WorkerRequestKind> = WorkerRequests[K]['progress'];

/** Why a request failed; `message` is written for the user, `detail` (a stack) for the log. */
export interface ErrorInfo {
  code: 'cancelled' | 'failed' | 'invalid-request' | 'unknown-kind' | 'worker-crashed';
  message: string;
  detail?: string;
}

/** Extension host -> worker. */
export type HostToWorker =
  | { type: 'request'; id: number; kind: WorkerRequestKind; params: unknown }
  | { type: 'cancel'; id: number };

/** Worker -> extension host. */
export type WorkerToHost =
  | { type: 'hello'; pid: number }
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: ErrorInfo }
  | { type: 'progress'; id: number; progress: JobProgress }
  /** Sent just before the worker exits on an uncaught error, so the host can show why. */
  | { type: 'fatal'; error: ErrorInfo };

/** What an experiment panel shows. */
export interface ExperimentView {
  name: string;
  dir: string;
  baseModel: string;
  prompts: string[];
  createdAt: string;
  settings: Record<string, unknown>;
  /** The reward backbone the next training uses, named for people, and the built-in prior its head starts from. */
  rewardBackbone: string;
  rewardPrior?: string;
  /** Where the person is in the loop, for the run the dashboard would show (`algorithm`). */
  algorithm: TrainingAlgorithm;
  loop: LoopView;
}

/** A rater's answer to a shown pair: the left image, the right one, both equally good, or no opinion. */
export const CHOICES = ['left', 'right', 'tie', 'skip'] as const;

/** One of {@link CHOICES}. */
export type Choice = (typeof CHOICES)[number];

/** True when `x` is one of {@link CHOICES} (for answers that arrive from a webview, a request or a file). */
export function isChoice(x: unknown): x is Choice {
  return (CHOICES as readonly unknown[]).includes(x);
}

/** One pair in the rating panel; the webview sees only its id, prompt and image URIs. */
export interface RatingItemView {
  id: string;
  prompt: string;
  leftUri: string;
  rightUri: string;
}

/** Everything the rating panel shows. */
export interface RatingView {
  title: string;
  /** 'rate' for the experiment's pairs, 'compare' for a blind comparison. */
  mode: 'rate' | 'compare';
  items: RatingItemView[];
  rated: number;
  target: number;
  /** Per-answer consistency from side-swapped repeats (0..1), null before any repeat. */
  consistency: number | null;
  repeats: number;
  /** Pairs being generated right now. */
  generating: number;
  canUndo: boolean;
  /** Set in compare mode once enough is rated: B's win rate over A. */
  winRate?: WinRateView;
}

/** A win rate with its 95% interval; in a blind comparison, of model B over model A (named once rating is over). */
export interface WinRateView {
  rate: number;
  low: number;
  high: number;
  n: number;
  /** What was compared, e.g. "Diffusion-DPO epoch 6 vs DDPO epoch 20" (B first). */
  label?: string;
}

/** One evaluation image in the dashboard. */
export interface EvalImageView {
  prompt: string;
  seed: number;
  uri: string;
  reward: number;
}

/** Everything the training dashboard shows: one run of the experiment (DDPO's or Diffusion-DPO's). */
export interface DashboardView {
  experiment: string;
  /** The run shown, and the runs the experiment has (the dashboard switches between them). */
  algorithm: TrainingAlgorithm;
  runs: TrainingAlgorithm[];
  state: 'idle' | 'running' | 'done' | 'failed' | 'stopped' | 'interrupted';
  message?: string;
  epoch: number;
  numEpochs: number;
  phase?: string;
  /** DDPO epochs (empty for a Diffusion-DPO run). */
  points: EpochPoint[];
  /** Diffusion-DPO epochs (empty for a DDPO run). */
  dpoPoints: DpoEpochPoint[];
  evalEpoch?: number;
  evalImages: EvalImageView[];
  winRate?: WinRateView & { epoch: number };
  /** Where the person is in the loop, and the next step as a button (no step while fine-tuning runs). */
  loop: LoopView;
}

/** The walkthrough (dashboard and experiment panel): rated pairs, the reward model's held-out accuracy, fine-tuning, the last blind win rate. */
export interface LoopView {
  rated: number;
  rewardAccuracy?: number;
  epochsDone: number;
  numEpochs: number;
  winRate?: number;
  next: { step?: string; label?: string; why: string };
}

/** Sent to a restorable panel (rating, dashboard): an opaque key the webview keeps as its state, so VS Code can reopen it after a window reload. */
export interface RestoreKeyMessage {
  type: 'restoreKey';
  key: string;
}

/** Rating panel -> extension host. */
export type RatingToHost =
  | { type: 'ready' }
  | { type: 'rate'; itemId: string; choice: string; elapsedMs: number }
  | { type: 'undo' };

/** Extension host -> rating panel. */
export type HostToRating =
  | { type: 'rating'; view: RatingView }
  /** A rating the store confirmed (fsynced). */
  | { type: 'saved'; itemId: string; rated: number }
  | { type: 'error'; message: string }
  | RestoreKeyMessage;

/** Training dashboard -> extension host. */
export type DashboardToHost =
  | { type: 'ready' }
  | { type: 'stopRun' }
  | { type: 'resumeRun' }
  | { type: 'showRun'; algorithm: string }
  /** The walkthrough's button: `step` is one of the loop's steps (core/studio/nextStep.ts), checked by the host. */
  | { type: 'runStep'; step: string };

/** Extension host -> training dashboard. */
export type HostToDashboard =
  | { type: 'dashboard'; view: DashboardView }
  | { type: 'error'; message: string }
  | RestoreKeyMessage;

/** Experiment panel -> extension host. */
export type ExperimentToHost =
  | { type: 'ready' }
  | { type: 'openExperimentFile' }
  | { type: 'addPrompt'; prompt: string }
  /** The walkthrough's button, as the dashboard's. */
  | { type: 'runStep'; step: string };

/** Extension host -> experiment panel. */
export type HostToExperiment =
  | { type: 'experiment'; experiment: ExperimentView }
  | { type: 'error'; message: string };

/** Each webview panel's two message unions; the key is also the name of its script bundle. */
export interface PanelMessages {
  rating: { toHost: RatingToHost; toWebview: HostToRating };
  dashboard: { toHost: DashboardToHost; toWebview: HostToDashboard };
  experiment: { toHost: ExperimentToHost; toWebview: HostToExperiment };
}
/** Name of one webview panel. */
export type PanelKind = keyof PanelMessages;
/** Messages panel P's webview sends; validate with `parsePanelMessage(P, raw)` before use. */
export type PanelToHost<P extends PanelKind> = PanelMessages[P]['toHost'];
/** Messages the host sends to panel P's webview. */
export type HostToPanel<P extends PanelKind> = PanelMessages[P]['toWebview'];
/** Host messages panel P's own code handles (the webview library keeps `restoreKey`). */
export type PanelMessage<P extends PanelKind> = Exclude<HostToPanel<P>, RestoreKeyMessage>;

// ---- runtime validation ----

/** The field types the validators understand; a trailing `?` makes the field optional, a trailing `|null` lets it be null. */
export type FieldShape = 'string' | 'number' | 'boolean' | 'object' | 'unknown' | 'string[]' | 'array' | 'errorInfo' | `${'string' | 'number' | 'boolean' | 'object'}${'?' | '|null'}`;

type FieldsOf<U, T> = Exclude<keyof Extract<U, { type: T }>, 'type'>;
type ShapeTable<U extends { type: string }> = { [T in U['type']]: { [F in FieldsOf<U, T>]-?: FieldShape } };

/** Field shapes of each panel's webview -> host messages; the compiler insists each panel and type is listed. */
export const PANEL_TO_HOST_SHAPES: { [P in PanelKind]: ShapeTable<PanelToHost<P>> } = {
  rating: {
    ready: {},
    rate: { itemId: 'string', choice: 'string', elapsedMs: 'number' },
    undo: {},
  },
  dashboard: {
    ready: {},
    stopRun: {},
    resumeRun: {},
    showRun: { algorithm: 'string' },
    runStep: { step: 'string' },
  },
  experiment: {
    ready: {},
    openExperimentFile: {},
    addPrompt: { prompt: 'string' },
    runStep: { step: 'string' },
  },
};

const HOST_TO_WORKER_SHAPES: ShapeTable<HostToWorker> = {
  request: { id: 'number', kind: 'string', params: 'object' },
  cancel: { id: 'number' },
};

// Replies have two variants; `ok` picks which of result/error must be present (checked below).
const WORKER_TO_HOST_SHAPES: { [T in WorkerToHost['type']]: Record<string, FieldShape> } = {
  hello: { pid: 'number' },
  reply: { id: 'number', ok: 'boolean' },
  progress: { id: 'number', progress: 'object' },
  fatal: { error: 'errorInfo' },
};

// The fields the host reads of each request kind's result and progress: a worker of another build is refused by name
// instead of being read as if it fitted.
const RESULT_SHAPES: { [K in WorkerRequestKind]: Record<string, FieldShape> } = {
  ping: { pid: 'number', uptimeSeconds: 'number' },
  status: { pid: 'number', node: 'string', platform: 'string', arch: 'string', onnxruntime: 'string|null', executionProviders: 'string[]', missingExecutionProviders: 'string[]', chosenExecutionProvider: 'string', uptimeSeconds: 'number' },
  selfTest: { completed: 'number' },
  generatePairs: { pairs: 'array' },
  rate: { ratingId: 'string', rated: 'number', consistency: 'number|null', repeats: 'number', last: 'object|null', ratedPairs: 'string[]', dueRepeats: 'array' },
  undo: { rated: 'number', consistency: 'number|null', repeats: 'number', last: 'object|null', ratedPairs: 'string[]', dueRepeats: 'array' },
  trainReward: { accuracy: 'number|null', heldOut: 'number', comparisons: 'number', summary: 'string', backbone: 'string', warmStart: 'string?' },
  startFineTune: { firstEpoch: 'number', lastEpoch: 'number', stoppedEarly: 'string?', algorithm: 'string' },
  stopFineTune: { stopped: 'boolean' },
  compare: { compareId: 'string', pairs: 'number' },
  exportLora: { file: 'string', epoch: 'number' },
  downloadModel: { dir: 'string' },
  checkModel: { dir: 'string', facts: 'array', canSample: 'boolean', canTrain: 'boolean', findings: 'array' },
};
const PROGRESS_BASE: Record<string, FieldShape> = { message: 'string?', fraction: 'number?' };
const PROGRESS_SHAPES: Partial<{ [K in WorkerRequestKind]: Record<string, FieldShape> }> = {
  selfTest: { step: 'number', total: 'number' },
  generatePairs: { pair: 'object?' },
  startFineTune: { epoch: 'number', numEpochs: 'number', phase: 'string', finished: 'object?', finishedDpo: 'object?' },
};

/** Checks a reply's result against what the host reads of a `kind` result; throws ProtocolError naming the field. */
export function parseJobResult<K extends WorkerRequestKind>(kind: K, raw: unknown): ResultOf<K> {
  return checkFields(raw, RESULT_SHAPES[kind], `worker result of "${kind}"`) as ResultOf<K>;
}

/** Checks a progress event of a `kind` job; throws ProtocolError naming the field. */
export function parseJobProgress<K extends WorkerRequestKind>(kind: K, raw: unknown): ProgressOf<K> {
  return checkFields(raw, { ...PROGRESS_BASE, ...PROGRESS_SHAPES[kind] }, `worker progress of "${kind}"`) as ProgressOf<K>;
}

function checkFields(raw: unknown, shape: Record<string, FieldShape>, what: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ProtocolError(`${what}: expected an object`);
  for (const [field, f] of Object.entries(shape)) {
    if (!fieldMatches((raw as Record<string, unknown>)[field], f)) throw new ProtocolError(`${what}: field "${field}" should be ${f}`);
  }
  return raw as Record<string, unknown>;
}

/** Thrown when a message does not have the expected shape. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Ends a `switch (msg.type)` over a message union: a compile error when a case is missing, and an error naming the
 * message should one arrive anyway.
 */
export function assertNever(msg: never, what = 'message'): never {
  throw new Error(`unhandled ${what} ${JSON.stringify(msg)}`);
}

/** Checks a message from panel P's webview; throws ProtocolError naming the bad field, or the type another panel sends. */
export function parsePanelMessage<P extends PanelKind>(panel: P, raw: unknown): PanelToHost<P> {
  return check(raw, PANEL_TO_HOST_SHAPES[panel], `${panel} panel message`) as PanelToHost<P>;
}

/** A receiver for panel P's webview: valid messages go to `handle`; anything else goes to `reject` with why, and nothing happens. */
export function panelReceiver<P extends PanelKind>(panel: P, handle: (msg: PanelToHost<P>) => void, reject: (why: string) => void): (raw: unknown) => void {
  return (raw) => {
    let msg: PanelToHost<P>;
    try {
      msg = parsePanelMessage(panel, raw);
    } catch (e) {
      return reject((e as Error).message);
    }
    handle(msg);
  };
}

/** Checks a message the worker received from the host. */
export function parseHostToWorker(raw: unknown): HostToWorker {
  return check(raw, HOST_TO_WORKER_SHAPES, 'worker request') as HostToWorker;
}

/** Checks a message the host received from the worker. */
export function parseWorkerToHost(raw: unknown): WorkerToHost {
  const msg = check(raw, WORKER_TO_HOST_SHAPES, 'worker message') as Record<string, unknown>;
  if (msg.type === 'reply' && msg.ok === false && !fieldMatches(msg.error, 'errorInfo')) throw new ProtocolError('worker message "reply": failed reply without a valid "error"');
  return msg as WorkerToHost;
}

function check(raw: unknown, table: Record<string, Record<string, FieldShape>>, what: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ProtocolError(`${what}: expected an object`);
  const msg = raw as Record<string, unknown>;
  if (typeof msg.type !== 'string' || !Object.prototype.hasOwnProperty.call(table, msg.type)) throw new ProtocolError(`${what}: unknown type ${JSON.stringify(msg.type)}`);
  return checkFields(msg, table[msg.type], `${what} "${msg.type}"`);
}

function fieldMatches(v: unknown, shape: FieldShape): boolean {
  if (shape.endsWith('?')) return v === undefined || fieldMatches(v, shape.slice(0, -1) as FieldShape);
  // "none": null, or for a number NaN too (a held-out accuracy without held-out pairs), which the fork channel's
  // structured clone keeps as it is
  if (shape.endsWith('|null')) return v === null || (shape === 'number|null' && Number.isNaN(v)) || fieldMatches(v, shape.slice(0, -'|null'.length) as FieldShape);
  switch (shape) {
    case 'unknown':
      return true;
    case 'string':
    case 'boolean':
      return typeof v === shape;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'string[]':
      return Array.isArray(v) && v.every((s) => typeof s === 'string');
    case 'array':
      return Array.isArray(v);
    case 'errorInfo':
      return typeof v === 'object' && v !== null && typeof (v as ErrorInfo).code === 'string' && typeof (v as ErrorInfo).message === 'string';
    default:
      return false;
  }
}
