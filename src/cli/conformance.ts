/** `ddpo conformance <dir>`: checks our runtime, autodiff and DDPO math against a folder of PyTorch oracles. */
import { existsSync } from 'node:fs';
import { defineCommand } from './command';
import { ConformanceResult, runConformance } from '../core/train/conformance';

function line(r: ConformanceResult): string {
  const err = Number.isFinite(r.maxRelErr) ? r.maxRelErr.toExponential(2) : String(r.maxRelErr);
  return `${r.passed ? 'PASS' : 'FAIL'} ${r.name.padEnd(40)} max rel err ${err}${r.detail ? `  (${r.detail})` : ''}`;
}

/** The conformance subcommand. */
export const conformanceCommand = defineCommand({
  path: ['conformance'],
  summary: 'Check forward, gradients and the DDPO step against PyTorch oracles in a model folder',
  flags: { json: 'boolean' },
  args: ['<dir>'],
  usage: [
    'Usage: ddpo conformance <dir> [--json]',
    '',
    '<dir> is a diffusers/optimum ONNX folder with oracle files, laid out like shared/fixtures/reference-sd:',
    'unet/oracle.safetensors (fwd, vjp, ddpo), unet/lora_peft.safetensors, tokenizer/oracle.json,',
    'text_encoder/ and vae_decoder/oracle.safetensors, sampler_oracle.safetensors. Checks run for the files present.',
    'Tolerance: forward 1e-4, gradients 1e-3, relative to the reference\'s largest magnitude.',
    'Exit status: 0 when every check passes, 1 when any fails, 2 on bad usage.',
  ].join('\n'),
  async run({ flags, positionals: [dir] }, io) {
    if (!existsSync(dir)) { io.err(`conformance: folder ${dir} does not exist`); return 2; }
    let results: ConformanceResult[];
    try {
      results = await runConformance(dir, (r) => { if (!flags.json) io.out(line(r)); });
    } catch (e) {
      io.err(`conformance: ${(e as Error).message}`);
      return 1;
    }
    const failed = results.filter((r) => !r.passed).length;
    if (flags.json) io.out(JSON.stringify({ results, passed: results.length - failed, failed }, null, 1));
    else io.out(`${results.length - failed} passed, ${failed} failed`);
    return failed ? 1 : 0;
  },
});
