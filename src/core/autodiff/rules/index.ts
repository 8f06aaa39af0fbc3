/** The gradient rule table, keyed by ONNX op name, plus which ops and inputs carry no gradient. */
import type { GradRule } from '../context';
import { CONV_RULES } from './conv';
import { ELEMENTWISE_RULES } from './elementwise';
import { LINALG_RULES } from './linalg';
import { NORM_RULES } from './norm';
import { SELECT_RULES } from './select';
import { SHAPE_RULES } from './shape';

/** Every op with a gradient rule. */
export const RULES: Record<string, GradRule> = {
  ...ELEMENTWISE_RULES, ...LINALG_RULES, ...CONV_RULES, ...NORM_RULES, ...SHAPE_RULES, ...SELECT_RULES,
};

/** Ops whose outputs are piecewise constant or not values of the inputs: gradient zero, nothing flows through. */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'EyeLike', 'OneHot', 'NonZero',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'ArgMax', 'ArgMin', 'Sign', 'Floor', 'Ceil', 'Round', 'BitShift',
  'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial',
]);

/** Input positions that can carry a gradient, for ops whose other inputs are shapes, indices, bounds or sizes. */
export const DIFF_INPUTS: Record<string, number[]> = {
  Reshape: [0], Expand: [0], Squeeze: [0], Unsqueeze: [0], Slice: [0], Split: [0], Pad: [0], Tile: [0],
  Resize: [0], Upsample: [0], Gather: [0], GatherElements: [0], GatherND: [0], ReduceSum: [0], ReduceMean: [0], ReduceSumSquare: [0],
  Clip: [0], Where: [1, 2], Dropout: [0], LayerNormalization: [0, 1, 2],
};
