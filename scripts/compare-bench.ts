/**
 * Prints our benchmark next to the PyTorch anchor's, with ratios and the targets.
 * Usage: node --import tsx scripts/compare-bench.ts OURS.json ANCHOR.json
 *   OURS.json from `ddpo bench all --out`, ANCHOR.json from `python3 .device/anchor_torch.py > anchor.json`.
 */
import { readFileSync } from 'node:fs';
import { AnchorResult, OursResult, compareWithAnchor, renderComparison } from '../src/core/runtime/benchCompare';

const [oursFile, anchorFile] = process.argv.slice(2);
if (!oursFile || !anchorFile) {
  console.error('usage: node --import tsx scripts/compare-bench.ts OURS.json ANCHOR.json');
  process.exit(2);
}
const ours = JSON.parse(readFileSync(oursFile, 'utf8')) as OursResult;
// the anchor prints one JSON line last; anything before it is log noise
const anchorText = readFileSync(anchorFile, 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
if (!anchorText) { console.error(`${anchorFile} holds no JSON line from anchor_torch.py`); process.exit(1); }
const anchor = JSON.parse(anchorText) as AnchorResult;
console.log(renderComparison(compareWithAnchor(ours, anchor), ours, anchor));
