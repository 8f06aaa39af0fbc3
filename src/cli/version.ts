/** `ddpo version`: versions of DDPO Studio, node and onnxruntime. */
import { version } from '../../package.json';
import { defineCommand } from './command';

/** Handler for `ddpo version`. */
export const versionCommand = defineCommand({
  path: ['version'],
  summary: 'Print the versions of DDPO Studio, node and onnxruntime',
  flags: {},
  usage: 'ddpo version\n\nPrints the DDPO Studio, node and onnxruntime-node versions and the execution providers onnxruntime lists here.',
  async run(_args, io) {
    io.out(`ddpo-studio ${version}`);
    io.out(`node ${process.versions.node} (${process.platform}-${process.arch})`);
    try {
      const ort = await import('onnxruntime-node');
      io.out(`onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}, execution providers: ${ort.listSupportedBackends().map((b) => b.name).join(', ')}`);
    } catch (e) {
      io.out(`onnxruntime-node not available: ${(e as Error).message}`);
    }
    return 0;
  },
});
