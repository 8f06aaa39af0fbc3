import { TRAINING_ALGORITHMS } from '../protocol';
import { defineCommand } from './command';
import { exportLora } from '../core/ddpo/exportLora';
import { checkpointName } from '../core/ddpo/layout';
import { configuredAlgorithm } from '../core/studio/runState';

/** `ddpo export-lora --experiment DIR --format kohya|peft|onnx --out FILE [--epoch N] [--algorithm A] [--force]` */
export const exportLoraCommand = defineCommand({
  path: ['export-lora'],
  summary: 'Export the trained LoRA (kohya or PEFT/diffusers naming) or a UNet ONNX with it merged',
  flags: { experiment: 'text', format: ['kohya', 'peft', 'onnx'], out: 'text', epoch: 'integer>=0', force: 'boolean', algorithm: TRAINING_ALGORITHMS },
  required: ['experiment', 'format', 'out'],
  usage: 'ddpo export-lora --experiment DIR --format kohya|peft|onnx --out FILE [--epoch N] [--algorithm ddpo|diffusion-dpo] [--force]\n' +
    '  kohya  lora_unet_*.lora_down/lora_up/alpha: Automatic1111, ComfyUI\n' +
    '  peft   unet.*.lora_A/lora_B (scale folded in): diffusers pipe.load_lora_weights\n' +
    '  onnx   the base UNet with the LoRA merged into its weights (weights in FILE.data next to it)\n' +
    '  --epoch  which checkpoint, by its folder\'s number: N is checkpoints/epoch-00000N (from 0), which the studio\n' +
    '           and training progress show as epoch N+1 (default: the newest)\n' +
    '  --algorithm  whose checkpoints: the DDPO run\'s or the Diffusion-DPO run\'s (default: ddpo.json\'s "algorithm", as ddpo train)\n' +
    '  --force  replace FILE (and FILE.data) if it exists; never a file inside an experiment or model folder',
  async run({ flags }, io) {
    const { experiment: dir, format, out } = flags;
    try {
      const r = await exportLora(dir, { format, out, epoch: flags.epoch, algorithm: flags.algorithm ?? configuredAlgorithm(dir), force: flags.force === true, lockLabel: 'ddpo export-lora' });
      io.out(`wrote ${r.files.join(' and ')} (${format}, checkpoint ${checkpointName(r.epoch)}: epoch ${r.epoch + 1} in the studio)`);
    } catch (e) {
      io.err(`export-lora from ${dir} failed: ${(e as Error).message}`);
      return 1;
    }
    return 0;
  },
});
