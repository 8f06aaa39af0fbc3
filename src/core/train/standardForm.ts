/** A UNet export in the form the training graph and the LoRA sampling graph are built from. */
import type { Model } from '../onnx/ir';
import { toFloat32 } from '../onnx/fp16';

/** The export and what was changed to bring it to that form. */
export interface StandardUnet {
  model: Model;
  /** One line per change, e.g. "float16 weights and inputs widened to float32". */
  changes: string[];
}

/**
 * Float32 throughout: a float16 export is widened (LoRA adapters, gradients and the DDPO loss are float32, and a GPU
 * run converts the whole graph to float16 compute again on its own terms).
 */
export function standardUnet(model: Model): StandardUnet {
  const changes: string[] = [];
  const wide = toFloat32(model);
  if (wide.widened) changes.push('float16 weights and inputs widened to float32');
  return { model: wide.model, changes };
}
