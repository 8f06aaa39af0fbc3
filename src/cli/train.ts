import { defineCommand } from './command';
import { trainExperiment } from '../core/ddpo/experimentRun';
import { NonFiniteError, OutOfMemoryError } from '../core/ddpo/guards';
import { RUN_DIRS } from '../core/ddpo/layout';
import { TRAINING_ALGORITHMS } from '../protocol';
import { parseProviderSetting } from '../core/runtime/providers';
import { jobProviders, machineBackends } from '../core/runtime/jobProviders';

/** `ddpo train --experiment DIR [--algorithm ddpo|diffusion-dpo] [--resume] [--ep cpu|auto|cuda|webgpu|dml|coreml]` */
export const trainCommand = defineCommand({
  path: ['train'],
  summary: 'Fine-tune a LoRA with DDPO against the experiment\'s reward, or with Diffusion-DPO on its rated pairs',
  flags: { experiment: 'text', resume: 'boolean', ep: 'text', algorithm: TRAINING_ALGORITHMS },
  required: ['experiment'],
  usage: 'ddpo train --experiment DIR [--algorithm ddpo|diffusion-dpo] [--resume] [--ep cpu|auto|cuda|webgpu|dml|coreml]\n' +
    '  Reads DIR/experiment.json (prompts; baseModel.path, or baseModel.id "embedded:tiny-shapes" for the embedded\n' +
    '  model) and DIR/ddpo.json (TRL DDPOConfig keys and this project\'s, e.g.\n' +
    '  {"num_epochs": 10, "sample_num_steps": 20, "reward": "jpeg_incompressibility"}; a missing key takes its default).\n' +
    '  Writes DIR/ddpo/metrics.jsonl, DIR/ddpo/checkpoints/epoch-NNNNNN/ (LoRA in PEFT and kohya naming,\n' +
    '  optimizer, RNG and stat-tracker state) and DIR/ddpo/eval/ images.\n' +
    '  --algorithm diffusion-dpo trains on the rated pairs of DIR/ratings.jsonl directly (Diffusion-DPO, no reward\n' +
    '  model; ties and skips carry no preference; the reward model\'s 20% of pairs held out): beta_dpo and the\n' +
    '  "diffusion_dpo" overrides of ddpo.json apply; it writes DIR/diffusion-dpo/ (metrics with the implicit reward\n' +
    '  accuracy on the held-out pairs, checkpoints). Default: ddpo.json\'s "algorithm", else ddpo.\n' +
    '  Before building the sessions it estimates the memory needed and stops (exit 3) naming train_timesteps_per_run,\n' +
    '  train_batch_size, sample_batch_size and latent_size when the run would not fit.\n' +
    '  --resume  continue from the newest checkpoint (also after a kill); the metrics match an uninterrupted run\n' +
    '  --ep      execution provider (default cpu); auto tries CUDA, then WebGPU, then the CPU (Linux), model by model,\n' +
    '            and says which one opened each model; on a GPU provider mixed_precision "fp16" computes in float16',
  async run({ flags }, io) {
    const dir = flags.experiment;
    try {
      const setting = parseProviderSetting(flags.ep ?? 'cpu');
      const providers = setting === 'cpu' ? undefined : jobProviders(setting, await machineBackends(), io.out);
      const r = await trainExperiment(dir, {
        resume: flags.resume === true, signal: io.signal, onLog: io.out, providers, lockLabel: flags.resume === true ? 'ddpo train --resume' : 'ddpo train', algorithm: flags.algorithm,
        approveRewardScript: (s) => io.out(`running reward script ${s.file} (sha256 ${s.sha256})`),
        onProgress: (p) => io.progress(`epoch ${p.epoch + 1}/${p.numEpochs} ${p.phase} ${p.done}/${p.total}`),
      });
      // epochs counted from 1, as the progress lines count them
      io.out(r.firstEpoch > r.lastEpoch ? `nothing to do: all ${r.lastEpoch + 1} epochs of ${dir}/${RUN_DIRS[r.algorithm]} are done (raise num_epochs in ddpo.json to train on)`
        : `done: epochs ${r.firstEpoch + 1}..${r.lastEpoch + 1}; metrics in ${dir}/${RUN_DIRS[r.algorithm]}/metrics.jsonl`);
      return 0;
    } catch (e) {
      if (io.signal.aborted) { io.err('stopped; resume with --resume'); return 130; }
      io.err((e as Error).message);
      return e instanceof NonFiniteError || e instanceof OutOfMemoryError ? 3 : 1;
    }
  },
});
