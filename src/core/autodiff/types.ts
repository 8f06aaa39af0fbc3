/** What the gradient walk knows of each forward tensor: its static shape, and whether its element type carries gradients. */
import { DataType } from '../onnx/ir';
import type { TensorInfo } from '../onnx/shapeUtil';

/** Static shapes by tensor name (`inferShapes`), with the values of known constants where given (`analyzeGraph`). */
export type ShapeMap = Map<string, TensorInfo>;

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, 16 /* BFLOAT16 */]);

/** True for element types that carry gradients. */
export function isFloatType(t: DataType | undefined): boolean {
  return t === undefined || FLOAT_TYPES.has(t);
}
