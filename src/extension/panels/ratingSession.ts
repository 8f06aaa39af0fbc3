/**
 * What a rating panel does, apart from VS Code (so it is tested in plain Node): keeps the queue of pairs, sends each
 * answer and undo to the worker one at a time, redraws from the worker's reply, and keeps pairs generated ahead.
 * The webview only ever names pairs by id: image paths stay here, so no message can point outside the experiment.
 */
import { compareQueue, listComparisons, type CompareManifest } from '../../core/studio/compare';
import { listPairs, queueOf } from '../../core/studio/pairs';
import { readRatingLog } from '../../core/studio/ratingLog';
import { assertNever, isChoice, panelReceiver, type ExecutionProviderSetting, type HostToRating, type QueuedPair, type RatingLogView, type RatingToHost, type RatingView } from '../../protocol';
import type { WorkerClient } from '../../worker/client';

/** What a rating panel rates. */
export interface RatingSource {
  mode: 'rate' | 'compare';
  experiment: string;
  experimentDir: string;
  /** Needed to generate pairs (mode 'rate'). */
  modelDir?: string;
  compareId?: string;
  target: number;
}

/** What a session needs from its panel and the extension. */
export interface RatingSessionHost {
  worker: Pick<WorkerClient, 'request'>;
  post(msg: HostToRating): void;
  /** The webview URI of an image, given its path relative to the ratings log's folder. */
  imageUri(rel: string): string;
  /** A line for the output channel. */
  log(line: string): void;
  /** Tells the person that pairs could not be generated (the panel shows it too). */
  generationFailed(message: string): void;
  executionProvider(): ExecutionProviderSetting;
  /** The key the webview keeps so the panel comes back after a window reload. */
  restoreKey: string;
}

/** Pairs kept ready ahead of the one on screen (also how many one worker job generates), and pairs sent to the webview. */
const PREFETCH = 4;
const SHOWN = 5;

const EMPTY_LOG: RatingLogView = { rated: 0, consistency: null, repeats: 0, last: null, ratedPairs: [], dueRepeats: [] };

/** One rating panel's queue and its trips to the worker. */
export class RatingSession {
  /** Handles one raw message from the webview; another panel's message or a malformed one is logged and dropped. */
  readonly receive = panelReceiver('rating', (msg) => this.handle(msg), (why) => this.host.log(`[host] rejected a rating panel message: ${why}`));
  private items: QueuedPair[] = [];
  // The log as last read (when the webview asked for its state) or as the worker's last reply described it.
  private logView = EMPTY_LOG;
  private manifest: CompareManifest | undefined;
  private readonly inFlight = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private generating = 0;
  private generation: AbortController | undefined;
  private generationFailed = false;
  private front: string | undefined;

  constructor(private readonly src: RatingSource, private readonly host: RatingSessionHost) {}

  /** Stops generating pairs ahead (the panel closed). */
  dispose(): void {
    this.generation?.abort();
  }

  private handle(msg: RatingToHost): void {
    switch (msg.type) {
      case 'ready':
        return this.ready();
      case 'rate':
        return this.rate(msg.itemId, msg.choice, msg.elapsedMs);
      case 'undo':
        return this.undo();
      default:
        assertNever(msg);
    }
  }

  // The one time the host reads the ratings log: when the webview asks for everything it shows.
  private ready(): void {
    this.host.post({ type: 'restoreKey', key: this.host.restoreKey });
    if (this.src.compareId !== undefined) this.manifest = listComparisons(this.src.experimentDir).find((m) => m.id === this.src.compareId);
    this.logView = readRatingLog(this.src.experimentDir, this.src.compareId);
    this.reload();
    this.postView();
    this.prefetch();
  }

  private rate(itemId: string, choice: string, elapsedMs: number): void {
    const item = this.items.find((i) => i.id === itemId);
    if (!item || this.inFlight.has(itemId) || !isChoice(choice)) {
      this.host.log(`[host] ignored a rating for unknown or already rated pair ${itemId} (${choice})`);
      return;
    }
    this.inFlight.add(itemId);
    if (this.front === itemId) this.front = undefined;
    this.enqueue(async () => {
      try {
        this.logView = await this.host.worker.request('rate', {
          experimentDir: this.src.experimentDir, compareId: this.src.compareId, pairId: item.pairId, prompt: item.prompt, left: item.left, right: item.right,
          choice, sideOrder: item.sideOrder, repeatOf: item.repeatOf, elapsedMs,
        });
        this.host.post({ type: 'saved', itemId, rated: this.logView.rated });
      } finally {
        this.inFlight.delete(itemId);
      }
    });
  }

  private undo(): void {
    this.enqueue(async () => {
      // read when its turn comes, so it is the rating the reply before it left last
      const last = this.logView.last;
      if (!last) return;
      this.logView = await this.host.worker.request('undo', { experimentDir: this.src.experimentDir, compareId: this.src.compareId, ratingId: last.id });
      this.front = last.repeatOf ? `${last.pairId}~${last.repeatOf}` : last.pairId;
    });
  }

  // Ratings and undos go to the worker one at a time, in the order the person gave them; each redraws from its reply.
  // The Experiments tree hears of the change from the file watch on ratings.jsonl, which sees every writer.
  private enqueue(op: () => Promise<void>): void {
    this.chain = this.chain.then(op).catch((e: Error) => {
      this.host.post({ type: 'error', message: `Not saved: ${e.message}` });
    }).then(() => {
      this.reload();
      this.postView();
      this.prefetch();
    });
  }

  // Rebuilds the queue from the pairs on disk (or the comparison's manifest) and the log as last known.
  private reload(): void {
    const { ratedPairs, dueRepeats } = this.logView;
    if (this.src.mode === 'compare') this.items = this.manifest ? compareQueue(this.src.experimentDir, this.manifest, ratedPairs) : [];
    else this.items = queueOf(listPairs(this.src.experimentDir), ratedPairs, dueRepeats);
    const f = this.items.findIndex((i) => i.id === this.front);
    if (f > 0) this.items.unshift(...this.items.splice(f, 1));
  }

  private view(): RatingView {
    const log = this.logView;
    const view: RatingView = {
      title: this.src.mode === 'compare' ? `Blind comparison · ${this.src.experiment}` : this.src.experiment,
      mode: this.src.mode,
      items: this.items.filter((i) => !this.inFlight.has(i.id)).slice(0, SHOWN).map((i) => ({ id: i.id, prompt: i.prompt, leftUri: this.host.imageUri(i.left), rightUri: this.host.imageUri(i.right) })),
      rated: log.rated,
      target: this.src.target,
      consistency: log.consistency,
      repeats: log.repeats,
      generating: this.generating,
      canUndo: log.last !== null,
    };
    if (log.winRate) view.winRate = log.winRate;
    return view;
  }

  private postView(): void {
    this.host.post({ type: 'rating', view: this.view() });
  }

  // Keeps PREFETCH unrated pairs ready, so the person never waits for generation.
  private prefetch(): void {
    if (this.src.mode !== 'rate' || this.generation || this.generationFailed || !this.src.modelDir) return;
    const ready = this.items.filter((i) => !i.repeatOf && !this.inFlight.has(i.id)).length;
    if (ready >= PREFETCH || this.logView.rated + ready >= this.src.target + PREFETCH) return;
    const count = PREFETCH;
    const ctl = new AbortController();
    this.generation = ctl;
    this.generating = count;
    this.postView();
    this.host.worker
      .request('generatePairs', { experimentDir: this.src.experimentDir, modelDir: this.src.modelDir, count, executionProvider: this.host.executionProvider() }, {
        signal: ctl.signal,
        onProgress: (p) => {
          if (!p.pair) return;
          this.generating = Math.max(0, this.generating - 1);
          this.reload();
          this.postView();
        },
      })
      .then(
        () => undefined,
        (e: Error & { code?: string }) => {
          if (e.code === 'cancelled') return;
          this.generationFailed = true;
          this.host.post({ type: 'error', message: `Could not generate pairs: ${e.message}` });
          this.host.generationFailed(e.message);
        },
      )
      .finally(() => {
        this.generation = undefined;
        this.generating = 0;
        this.reload();
        this.postView();
        if (!ctl.signal.aborted) this.prefetch();
      });
  }
}
