import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFlags, type CliCommand, type FlagTable } from './command';
import { ddpoLayout, checkpointName } from '../core/ddpo/layout';
import { CKPT_FILES, listCheckpoints } from '../core/ddpo/checkpoint';
import { embeddedModelDir, experimentModelDir } from '../core/experiment/modelDir';
import { readExperiment } from '../core/experiment/store';
import { loadModel, saveModel } from '../core/onnx/proto';
import { mergeLora } from '../core/train/lora';
import { readLora } from '../core/train/loraFile';
import { atomicWriteFile } from '../core/fsutil';
import { acquireRunLock, type RunLock } from '../core/experiment/runLock';

const FLAGS: FlagTable = { experiment: 'text', format: ['kohya', 'peft', 'onnx'], out: 'text', epoch: 'integer' };

/** `ddpo export-lora --experiment DIR --format kohya|peft|onnx --out FILE [--epoch N]` */
export const exportLoraCommand: CliCommand = {
  path: ['export-lora'],
  summary: 'Export the trained LoRA (kohya or PEFT/diffusers naming) or a UNet ONNX with it merged',
  flags: FLAGS,
  usage: 'ddpo export-lora --experiment DIR --format kohya|peft|onnx --out FILE [--epoch N]\n' +
    '  kohya  lora_unet_*.lora_down/lora_up/alpha: Automatic1111, ComfyUI\n' +
    '  peft   unet.*.lora_A/lora_B (scale folded in): diffusers pipe.load_lora_weights\n' +
    '  onnx   the base UNet with the LoRA merged into its weights (weights in FILE.data next to it)\n' +
    '  --epoch  which checkpoint (default: the newest)',
  async run(argv, io) {
    const { flags } = parseFlags(argv, FLAGS);
    const dir = flags.experiment, format = flags.format, out = flags.out;
    if (typeof dir !== 'string' || typeof out !== 'string') { io.err('missing --experiment DIR or --out FILE'); return 2; }
    if (format !== 'kohya' && format !== 'peft' && format !== 'onnx') { io.err('--format must be kohya, peft or onnx'); return 2; }
    const ckDir = ddpoLayout(dir).checkpointsDir;
    const epochs = listCheckpoints(ckDir);
    const epoch = flags.epoch === undefined ? epochs[epochs.length - 1] : Number(flags.epoch);
    if (epoch === undefined || !epochs.includes(epoch)) {
      io.err(epochs.length ? `no checkpoint for epoch ${flags.epoch}; available: ${epochs.join(', ')}` : `no checkpoint in ${ckDir}; run \`ddpo train --experiment ${dir}\` first`);
      return 1;
    }
    const ck = path.join(ckDir, checkpointName(epoch));
    let lock: RunLock | undefined;
    try {
      lock = acquireRunLock(dir, 'ddpo export-lora');
      if (format === 'onnx') {
        const modelDir = experimentModelDir(await readExperiment(dir), dir, embeddedModelDir);
        const merged = mergeLora(loadModel(path.join(modelDir, 'unet', 'model.onnx')), readLora(path.join(ck, CKPT_FILES.peft)));
        saveModel(merged, out, { externalData: path.basename(out) + '.data' });
      } else {
        await atomicWriteFile(out, fs.readFileSync(path.join(ck, format === 'kohya' ? CKPT_FILES.kohya : CKPT_FILES.peft)));
      }
    } catch (e) {
      io.err(`export from ${ck} failed: ${(e as Error).message}`);
      return 1;
    } finally {
      lock?.release();
    }
    io.out(`wrote ${out} (${format}, epoch ${epoch})`);
    return 0;
  },
};
