import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The reference Stable Diffusion fixture folder (`<repo>/../shared/fixtures/reference-sd`). */
export const referenceSd = resolve(__dirname, '../../../../shared/fixtures/reference-sd');

/** `skip` option for tests that need the fixtures: false when present, else the reason. */
export const needsFixtures: string | false = existsSync(referenceSd) ? false : `fixtures not found at ${referenceSd} (a fresh clone has none; CI does)`;
