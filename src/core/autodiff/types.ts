/** What the gradient walk knows of each forward tensor: its static shape, and whether its element type carries gradients. */
import { DataType, Tensor } from '../onnx/ir';

/** Static element type and dims of a tensor (what `inferShapes` returns); `value` when it is a known constant. */
export interface ShapeInfo {
  elemType: DataType;
  dims: number[];
  value?: Tensor;
}

/** Static shapes by tensor name. */
export type ShapeMap = Map<string, ShapeInfo>;

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, 16 /* BFLOAT16 */]);

/** True for element types that carry gradients. */
export function isFloatType(t: DataType | undefined): boolean {
  return t === undefined || FLOAT_TYPES.has(t);
}
