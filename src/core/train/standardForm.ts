/** A UNet export in the form the training graph and the LoRA sampling graph are built from. */
import type { Model } from '../onnx/ir';
import { toFloat32 } from '../onnx/fp16';
import { lowerContribOps } from '../onnx/lowerContrib';

/** The export and what was changed to bring it to that form. */
export interface StandardUnet {
  model: Model;
  /** One line per change, e.g. "float16 weights and inputs widened to float32". */
  changes: string[];
}

/**
 * Standard ONNX operators only, float32 throughout: onnxruntime's fused com.microsoft ops are lowered (autodiff
 * differentiates standard ops, and every provider runs them), and a float16 export is widened (LoRA adapters, gradients
 * and the DDPO loss are float32; a GPU run converts the graph to float16 compute again on its own terms).
 */
export function standardUnet(model: Model): StandardUnet {
  const changes: string[] = [];
  const low = lowerContribOps(model);
  if (low.unsupported.length) {
    throw new Error(`the UNet uses onnxruntime's fused operators ${low.unsupported.map((op) => `com.microsoft.${op}`).join(', ')}, which training cannot lower to standard ONNX operators; ` +
      'train on the export before optimisation (optimum-cli export onnx without --optimize, or the model before onnxruntime.transformers.optimizer / Olive)');
  }
  if (low.lowered.size) changes.push(`fused operators lowered to standard ones: ${[...low.lowered].map(([op, k]) => `${op} ×${k}`).join(', ')}`);
  const wide = toFloat32(low.model);
  if (wide.widened) changes.push('float16 weights and inputs widened to float32');
  return { model: wide.model, changes };
}
