/**
 * Prints our benchmark next to the PyTorch anchor's, with ratios and the targets.
 * Usage: node --import tsx scripts/compare-bench.ts ANCHOR.json OURS.json [OURS2.json ...]
 *   OURS*.json from `ddpo bench ... --out` (several runs are merged), ANCHOR.json from `python3 .device/anchor_torch.py > anchor.json`.
 */
import { readFileSync } from 'node:fs';
import { AnchorResult, OursResult, compareWithAnchor, renderComparison } from '../src/core/bench/compare';

const [anchorFile, ...oursFiles] = process.argv.slice(2);
if (!anchorFile || !oursFiles.length) {
  console.error('usage: node --import tsx scripts/compare-bench.ts ANCHOR.json OURS.json [OURS2.json ...]');
  process.exit(2);
}
const parts = oursFiles.map((f) => JSON.parse(readFileSync(f, 'utf8')) as OursResult);
const ours: OursResult = {
  device: parts.find((p) => p.device)?.device,
  sample: parts.flatMap((p) => p.sample ?? []),
  train: parts.flatMap((p) => p.train ?? []),
  memory: Object.assign({}, ...parts.map((p) => p.memory ?? {})),
};
// the anchor prints one JSON line last; anything before it is log noise
const anchorText = readFileSync(anchorFile, 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
if (!anchorText) { console.error(`${anchorFile} holds no JSON line from anchor_torch.py`); process.exit(1); }
const anchor = JSON.parse(anchorText) as AnchorResult;
console.log(renderComparison(compareWithAnchor(ours, anchor), ours, anchor));
