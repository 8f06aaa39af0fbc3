/** A proportion with a 95% Wilson score interval. */
export interface RateWithCI {
  rate: number;
  low: number;
  high: number;
  n: number;
}

/** Wilson score interval for `successes` out of `n` (z = 1.96 by default); n = 0 gives rate NaN and [0, 1]. */
export function wilson(successes: number, n: number, z = 1.96): RateWithCI {
  if (n <= 0) return { rate: NaN, low: 0, high: 1, n: 0 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { rate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), n };
}

/** Win rate counting ties as half a win, with a Wilson 95% interval over wins+losses+ties. */
export function winRateWithCI(wins: number, losses: number, ties = 0): RateWithCI {
  return wilson(wins + ties / 2, wins + losses + ties);
}
