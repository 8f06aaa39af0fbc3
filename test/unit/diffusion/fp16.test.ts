import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { A, GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, emptyGraph, makeModel } from '../../../src/core/onnx/ir';
import { saveModel } from '../../../src/core/onnx/proto';
import { StableDiffusionPipeline } from '../../../src/core/diffusion/pipeline';
import { sampleDdim } from '../../../src/core/diffusion/sampler';
import { float32ToHalfBits, halfBitsToFloat32 } from '../../../src/core/safetensors';
import { needsFixture, referenceSd } from '../fixtures';

// A stand-in fp16 UNet with a float scalar timestep (as some exports have): out = fp16(0.1 · sample),
// with timestep and context folded in times zero so they stay real inputs.
function writeFp16Unet(file: string): void {
  const g = emptyGraph('fp16_unet');
  const b = new GraphBuilder(g);
  b.input('sample', DataType.FLOAT16, ['batch', 4, 'height', 'width']);
  b.input('timestep', DataType.FLOAT, []);
  b.input('encoder_hidden_states', DataType.FLOAT16, ['batch', 'sequence', 32]);
  const x = b.op('Cast', ['sample'], { to: A.i(DataType.FLOAT) });
  const ctx = b.op('ReduceMean', [b.op('Cast', ['encoder_hidden_states'], { to: A.i(DataType.FLOAT) })], { keepdims: A.i(0) });
  const zero = b.op('Mul', [b.op('Add', ['timestep', ctx]), b.scalar(0)]);
  const y = b.op('Mul', [x, b.op('Add', [b.scalar(0.1), zero])]);
  b.output(b.op('Cast', [y], { to: A.i(DataType.FLOAT16) }), 'out_sample', DataType.FLOAT16, ['batch', 4, 'height', 'width']);
  saveModel(makeModel(g, 17), file);
}

test('an fp16 UNet with a float scalar timestep is fed and read through half-precision bits', { skip: needsFixture() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fp16-'));
  try {
    cpSync(referenceSd, dir, { recursive: true });
    writeFp16Unet(join(dir, 'unet/model.onnx'));
    const pipe = await StableDiffusionPipeline.load(dir);
    try {
      assert.deepEqual([pipe.unetSample.type, pipe.unetTimestep.type, pipe.unetTimestep.shape.length], ['float16', 'float32', 0]);
      const r = await sampleDdim(pipe, { prompt: 'a cat', count: 1, seed: 2, steps: 3, guidance: 7.5, eta: 1, latentHeight: 8, latentWidth: 8, recordEps: true });
      // Both guidance halves equal 0.1·x, so the guided output is 0.1·x rounded through fp16 twice.
      const x = r.trajectory[0];
      for (let i = 0; i < x.length; i++) {
        const expected = 0.1 * halfValue(x[i]);
        assert.ok(Math.abs(r.eps![0][i] - expected) <= 1e-3 * Math.abs(expected) + 1e-6, `element ${i}`);
      }
      assert.ok(r.logProbs.every((lp) => Number.isFinite(lp[0])));
    } finally { await pipe.release(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

function halfValue(v: number): number {
  return halfBitsToFloat32(float32ToHalfBits(Float32Array.of(v)))[0];
}
