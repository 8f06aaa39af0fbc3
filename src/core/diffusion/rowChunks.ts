/**
 * Independent rows (UNet samples, DDPO items) through a graph whose shapes limit a run: chunks of its fixed batch, the
 * last one padded, and only rows of one timestep together where the graph takes a single scalar timestep.
 */

/** One run: the rows it carries, and how many rows it is fed (`size` >= rows; the rest copies of its first row). */
export interface RowChunk {
  rows: number[];
  size: number;
}

/** What limits the rows of one run. */
export interface ChunkLimits {
  /** Every run has exactly this many rows (a static batch); unset when the batch is free. */
  fixed?: number;
  /** At most this many rows per run when the batch is free (default: all of them). */
  max?: number;
  /** Rows of one run must share their key (a graph with one scalar timestep for the whole batch). */
  sharedKey?: boolean;
}

/** Splits rows with `keys` (one per row, e.g. their timesteps) into runs the limits allow, in row order within each key. */
export function planRowChunks(keys: readonly number[], limits: ChunkLimits): RowChunk[] {
  const cap = limits.fixed ?? limits.max ?? Math.max(1, keys.length);
  if (!(cap >= 1) || !Number.isInteger(cap)) throw new Error(`planRowChunks: rows per run must be a positive integer, got ${cap}`);
  const groups = new Map<number, number[]>();
  keys.forEach((k, i) => {
    const key = limits.sharedKey ? k : 0;
    const g = groups.get(key);
    if (g) g.push(i); else groups.set(key, [i]);
  });
  const out: RowChunk[] = [];
  for (const rows of groups.values()) {
    for (let s = 0; s < rows.length; s += cap) {
      const part = rows.slice(s, s + cap);
      out.push({ rows: part, size: limits.fixed ?? part.length });
    }
  }
  return out;
}

/**
 * The chunk's rows of `src` (`per` values each), padded to `chunk.size` rows with copies of its first row: a copy keeps
 * every padded value finite (a zero row can make a log-probability or a division infinite, and 0·∞ is NaN).
 */
export function gatherRows(src: ArrayLike<number>, per: number, chunk: RowChunk): Float32Array {
  const { rows, size } = chunk;
  const contiguous = rows.every((r, k) => r === rows[0] + k);
  if (contiguous && size === rows.length && src instanceof Float32Array) return src.subarray(rows[0] * per, (rows[0] + size) * per);
  const out = new Float32Array(size * per);
  for (let k = 0; k < size; k++) {
    const r = rows[k] ?? rows[0];
    for (let i = 0; i < per; i++) out[k * per + i] = src[r * per + i];
  }
  return out;
}

/** Writes a run's output rows back to their places in `dst` (`per` values each); padded rows are dropped. */
export function scatterRows(dst: Float32Array, out: ArrayLike<number>, per: number, chunk: RowChunk): void {
  chunk.rows.forEach((r, k) => {
    for (let i = 0; i < per; i++) dst[r * per + i] = out[k * per + i];
  });
}

/** Runs every chunk in order and assembles the `per`-valued output rows. */
export async function mapRowChunks(batch: number, per: number, chunks: RowChunk[], run: (chunk: RowChunk) => Promise<ArrayLike<number>>): Promise<Float32Array> {
  const out = new Float32Array(batch * per);
  for (const c of chunks) scatterRows(out, await run(c), per, c);
  return out;
}
