import { defineCommand } from './command';
import { exportPreferences } from '../core/reward/export';

/** `ddpo export-preferences --experiment DIR --out DIR [--force]` */
export const exportPreferencesCommand = defineCommand({
  path: ['export-preferences'],
  summary: 'Write an experiment\'s rated pairs as a Pick-a-Pic-schema dataset (JSONL + JPEGs)',
  flags: { experiment: 'text', out: 'text', force: 'boolean' },
  required: ['experiment', 'out'],
  usage: 'ddpo export-preferences --experiment DIR --out DIR [--force]\n' +
    '  Writes OUT/train.jsonl (caption, jpg_0, jpg_1, label_0, label_1, ...) and OUT/images/*.jpg.\n' +
    '  --force replaces an existing OUT/train.jsonl. Ratings whose images cannot be read are left out and counted.\n' +
    '  Load with datasets: load_dataset("json", data_files="OUT/train.jsonl") then cast jpg_0/jpg_1 to Image() (paths are relative to OUT).',
  async run({ flags }, io) {
    let s;
    try {
      s = exportPreferences(flags.experiment, flags.out, { force: flags.force === true });
    } catch (e) {
      io.err(`export-preferences from ${flags.experiment} failed: ${(e as Error).message}`);
      return 1;
    }
    io.out(`wrote ${s.rows} rows (${s.ties} ties, ${s.skipped} skips left out) and ${s.images} images to ${s.file}`);
    if (s.unreadable) io.err(`${s.unreadable} rating${s.unreadable === 1 ? '' : 's'} left out: an image could not be read (first: ${s.firstUnreadable})`);
    return 0;
  },
});
