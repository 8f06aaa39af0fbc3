import { defineCommand } from './command';
import { exportPreferences } from '../core/reward/export';

/** `ddpo export-preferences --experiment DIR --out DIR` */
export const exportPreferencesCommand = defineCommand({
  path: ['export-preferences'],
  summary: 'Write an experiment\'s rated pairs as a Pick-a-Pic-schema dataset (JSONL + JPEGs)',
  flags: { experiment: 'text', out: 'text' },
  required: ['experiment', 'out'],
  usage: 'ddpo export-preferences --experiment DIR --out DIR\n' +
    '  Writes OUT/train.jsonl (caption, jpg_0, jpg_1, label_0, label_1, ...) and OUT/images/*.jpg.\n' +
    '  Load with datasets: load_dataset("json", data_files="OUT/train.jsonl") then cast jpg_0/jpg_1 to Image() (paths are relative to OUT).',
  async run({ flags }, io) {
    const s = exportPreferences(flags.experiment, flags.out);
    io.out(`wrote ${s.rows} rows (${s.ties} ties, ${s.skipped} skips left out) and ${s.images} images to ${s.file}`);
    return 0;
  },
});
