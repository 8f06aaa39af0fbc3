import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, emptyGraph, makeModel } from '../../../src/core/onnx/ir';
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { saveModel } from '../../../src/core/onnx/proto';
import { OrtModel } from '../../../src/core/runtime/ortModel';
import { CPU_ONLY } from '../../../src/core/runtime/sessionProviders';

// One-node model: y = op(x), the node named "my_node", at the given default-domain opset.
function oneOpModel(dir: string, name: string, op: string, opset: number, domain = ''): string {
  const g = emptyGraph();
  const b = new GraphBuilder(g);
  const y = b.op(op, [b.input('x', DataType.FLOAT, [2])], {}, { name: 'my_node', domain });
  b.output(y, 'y', DataType.FLOAT, [2]);
  const m = makeModel(g, opset);
  if (domain) m.opsetImports.push({ domain, version: 1 });
  const file = join(dir, `${name}.onnx`);
  saveModel(m, file);
  return file;
}

test('a model onnxruntime cannot load names the op, node and opset at fault, and what is supported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ort-load-'));
  try {
    const newer = oneOpModel(dir, 'newer', 'Relu', 99);
    await assert.rejects(OrtModel.load(newer), (e: Error) => {
      assert.match(e.message, /stamped with ai\.onnx opset 99, newer than this onnxruntime supports \(up to opset \d+\): re-export the model with standard ONNX ops at opset 17/);
      assert.doesNotMatch(e.message, /is complete/);
      return true;
    });
    const unknown = oneOpModel(dir, 'unknown', 'FancyAttention', 17);
    await assert.rejects(OrtModel.open(unknown, CPU_ONLY), (e: Error) => {
      assert.match(e.message, /op FancyAttention at node "my_node" is not available in ai\.onnx opset 17: onnxruntime runs the standard ONNX ops of opsets 7 and up/);
      assert.doesNotMatch(e.message, /is complete/);
      return true;
    });
    const custom = oneOpModel(dir, 'custom', 'Fused', 17, 'my.vendor');
    await assert.rejects(OrtModel.load(custom), /op my\.vendor\.Fused at node "my_node" is not available in my\.vendor opset 1: onnxruntime knows no ops of domain my\.vendor/);
    // A damaged file is still told to check that it is complete.
    const cut = join(dir, 'cut.onnx');
    writeFileSync(cut, readFileSync(newer).subarray(0, 20));
    await assert.rejects(OrtModel.load(cut), /check that the file .* is complete/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
