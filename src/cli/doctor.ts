/** `ddpo doctor MODEL`: what a model is and whether it samples and trains here; for anything it cannot do, why and what to do. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { defineCommand, UsageError } from './command';
import { EXPERIMENT_FILE } from '../core/experiment/schema';
import { resolveModel } from '../core/models/hubDownload';
import { diagnoseModel } from '../core/doctor/doctor';
import { formatModelReport } from '../core/doctor/format';
import { readDdpoConfigRaw } from '../core/ddpo/experimentRun';

/** The doctor subcommand. */
export const doctorCommand = defineCommand({
  path: ['doctor'],
  summary: 'Say what a Stable Diffusion ONNX model is, whether it samples and trains here, and what to do where it cannot',
  flags: { experiment: 'text', revision: 'text', cache: 'text', offline: 'boolean', json: 'boolean' },
  args: ['<model>'],
  usage: [
    'Usage: ddpo doctor MODEL_DIR_OR_REPO [--experiment DIR] [--json] [--revision REV] [--cache DIR] [--offline]',
    '',
    'Reads the model (a local ONNX folder, or a Hugging Face repo id downloaded once into --cache) and reports: the',
    'family it looks like, prediction type, exporter and opset, the shapes the export fixes, fused operators, precision,',
    'the LoRA target layers per block and the names they get; then samples one step on the CPU and builds the DDPO',
    'training graph (no session) with its memory estimate, at the settings of --experiment\'s ddpo.json or the defaults.',
    'Each thing it cannot do comes with why and what to do. Exit status: 0 when it can sample and train, 1 when not.',
  ].join('\n'),
  async run({ flags, positionals: [spec] }, io) {
    const dir = await resolveModel(spec, {
      cacheDir: flags.cache ?? join(homedir(), '.cache', 'ddpo-studio', 'models'), revision: flags.revision,
      token: process.env.HF_TOKEN, offline: flags.offline === true, signal: io.signal, onLog: (l) => io.err(l),
      onProgress: (p) => io.progress(`downloading ${p.file} ${(p.bytes / 2 ** 20).toFixed(0)}/${(p.total / 2 ** 20).toFixed(0)} MiB`),
    });
    // a mistyped folder would read as no ddpo.json and be checked at the defaults without a word
    if (flags.experiment && !existsSync(join(flags.experiment, EXPERIMENT_FILE))) throw new UsageError(`--experiment ${flags.experiment}: no ${EXPERIMENT_FILE} there; give an experiment folder (.ddpo/<name>)`);
    const ddpo = flags.experiment ? readDdpoConfigRaw(flags.experiment) : undefined;
    const report = await diagnoseModel(dir, { ddpo, onProgress: (m) => io.progress(`${m}…`) });
    if (flags.json) io.out(JSON.stringify(report, null, 1));
    else for (const l of formatModelReport(report)) io.out(l);
    return report.canSample && report.canTrain ? 0 : 1;
  },
});
