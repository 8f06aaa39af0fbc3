/** Small hand-built graphs with named linear layers and an MSE loss, for LoRA and training tests that need no fixtures. */
import { GraphBuilder } from '../../../src/core/onnx/builder';
import { DataType, Model, emptyGraph, makeModel, makeTensor } from '../../../src/core/onnx/ir';
import { mulberry32 } from '../../../src/core/random';
import { reduce } from '../../../src/core/train/losses';

/** Deterministic uniform values in [-1, 1). */
export function randomValues(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** x [2,3] -> Gemm(transB, W [4,3], bias) named to_q and MatMul(W [3,5]) named to_k; outputs q [2,4], k [2,5]. */
export function tinyLinearModel(): Model {
  const g = emptyGraph('tiny');
  const b = new GraphBuilder(g);
  b.input('x', DataType.FLOAT, [2, 3]);
  const wq = b.initializer(makeTensor('wq', DataType.FLOAT, [4, 3], randomValues(12, 1)), true);
  const bq = b.initializer(makeTensor('bq', DataType.FLOAT, [4], randomValues(4, 2)), true);
  const wk = b.initializer(makeTensor('wk', DataType.FLOAT, [3, 5], randomValues(15, 3)), true);
  b.op('Gemm', ['x', wq, bq], { transB: { type: 'int', value: 1 } }, { name: '/blk/attn/to_q/Gemm', outputs: ['q'] });
  b.op('MatMul', ['x', wk], {}, { name: '/blk/attn/to_k/MatMul', outputs: ['k'] });
  b.output('q', 'q', DataType.FLOAT, [2, 4]);
  b.output('k', 'k', DataType.FLOAT, [2, 5]);
  return makeModel(g, 17);
}

/** Mean squared error over every element. */
export function appendMseLoss(b: GraphBuilder, prediction: string, target: string, opset: number): string {
  return b.within('mse_loss', () => {
    const d = b.op('Sub', [prediction, target]);
    return reduce(b, 'ReduceMean', b.op('Mul', [d, d]), null, false, opset);
  });
}
