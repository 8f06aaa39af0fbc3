import * as fs from 'node:fs';
import * as path from 'node:path';
import { defineCommand } from './command';
import { ddpoLayout, checkpointName } from '../core/ddpo/layout';
import { CKPT_FILES, listCheckpoints } from '../core/ddpo/checkpoint';
import { embeddedModelDir, experimentModelDir } from '../core/experiment/modelDir';
import { readExperiment } from '../core/experiment/store';
import { loadModel, saveModel } from '../core/onnx/proto';
import { mergeLora } from '../core/train/lora';
import { readLora } from '../core/train/loraFile';
import { atomicWriteFile } from '../core/fsutil';

/** `ddpo export-lora --experiment DIR --format kohya|peft|onnx --out FILE [--epoch N]` */
export const exportLoraCommand = defineCommand({
  path: ['export-lora'],
  summary: 'Export the trained LoRA (kohya or PEFT/diffusers naming) or a UNet ONNX with it merged',
  flags: { experiment: 'text', format: ['kohya', 'peft', 'onnx'], out: 'text', epoch: 'integer' },
  required: ['experiment', 'format', 'out'],
  usage: 'ddpo export-lora --experiment DIR --format kohya|peft|onnx --out FILE [--epoch N]\n' +
    '  kohya  lora_unet_*.lora_down/lora_up/alpha: Automatic1111, ComfyUI\n' +
    '  peft   unet.*.lora_A/lora_B (scale folded in): diffusers pipe.load_lora_weights\n' +
    '  onnx   the base UNet with the LoRA merged into its weights (weights in FILE.data next to it)\n' +
    '  --epoch  which checkpoint (default: the newest)',
  async run({ flags }, io) {
    const { experiment: dir, format, out } = flags;
    const ckDir = ddpoLayout(dir).checkpointsDir;
    const epochs = listCheckpoints(ckDir);
    const epoch = flags.epoch ?? epochs[epochs.length - 1];
    if (epoch === undefined || !epochs.includes(epoch)) {
      io.err(epochs.length ? `no checkpoint for epoch ${flags.epoch}; available: ${epochs.join(', ')}` : `no checkpoint in ${ckDir}; run \`ddpo train --experiment ${dir}\` first`);
      return 1;
    }
    const ck = path.join(ckDir, checkpointName(epoch));
    try {
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
    }
    io.out(`wrote ${out} (${format}, epoch ${epoch})`);
    return 0;
  },
});
