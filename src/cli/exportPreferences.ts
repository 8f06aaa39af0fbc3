import { parseFlags, type CliCommand, type FlagTable } from './command';
import { exportPreferences } from '../core/reward/export';

const FLAGS: FlagTable = { experiment: 'text', out: 'text' };

/** `ddpo export-preferences --experiment DIR --out DIR` */
export const exportPreferencesCommand: CliCommand = {
  path: ['export-preferences'],
  summary: 'Write an experiment\'s rated pairs as a Pick-a-Pic-schema dataset (JSONL + JPEGs)',
  flags: FLAGS,
  usage: 'ddpo export-preferences --experiment DIR --out DIR\n' +
    '  Writes OUT/train.jsonl (caption, jpg_0, jpg_1, label_0, label_1, ...) and OUT/images/*.jpg.\n' +
    '  Load with datasets: load_dataset("json", data_files="OUT/train.jsonl") then cast jpg_0/jpg_1 to Image() (paths are relative to OUT).',
  async run(argv, io) {
    const { flags } = parseFlags(argv, FLAGS);
    if (typeof flags.experiment !== 'string' || typeof flags.out !== 'string') { io.err('usage: ' + this.usage); return 2; }
    const s = exportPreferences(flags.experiment, flags.out);
    io.out(`wrote ${s.rows} rows (${s.ties} ties, ${s.skipped} skips left out) and ${s.images} images to ${s.file}`);
    return 0;
  },
};
