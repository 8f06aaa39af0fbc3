/** A model report as one screen of text: the facts, the two verdicts, then each problem with what to do. */
import type { ModelReport } from '../../protocol';

/** The report's lines, for a terminal or a notification's detail. */
export function formatModelReport(r: ModelReport): string[] {
  const width = Math.max('can sample'.length, ...r.facts.map((f) => f.label.length));
  const lines = [`ddpo doctor: ${r.dir}`];
  for (const f of r.facts) lines.push(`  ${f.label.padEnd(width)}  ${f.value}`);
  const verdict = (ok: boolean, area: string) => (ok ? 'yes' : `no (${r.findings.filter((f) => f.level === 'error' && areasOf(area).includes(f.area)).length || 'see below'} problem(s))`);
  lines.push(`  ${'can sample'.padEnd(width)}  ${verdict(r.canSample, 'sample')}`);
  lines.push(`  ${'can train'.padEnd(width)}  ${verdict(r.canTrain, 'train')}`);
  for (const f of r.findings) {
    lines.push(`${f.level === 'error' ? 'ERROR' : 'warning'} [${f.area}] ${f.message}`);
    lines.push(`  what to do: ${f.fix}`);
  }
  return lines;
}

// the findings that stop sampling, or training (which needs sampling too)
function areasOf(verdict: string): string[] {
  return verdict === 'sample' ? ['folder', 'model', 'sample'] : ['folder', 'model', 'sample', 'train', 'memory'];
}
