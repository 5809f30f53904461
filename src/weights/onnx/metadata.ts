// What a file's metadata_props say about using it: the class names and the
// input pipeline our own export writes (src/weights/onnx/export/metadata.ts),
// so a model saved as .onnx reads back with its labels and pipeline. Values
// are JSON; anything unexpected is ignored (other exporters use other keys).
import type { onnx } from 'onnx-proto';

/** Labels and the input pipeline found in metadata_props. */
export interface OnnxMetadata {
  labels?: string[];
  /** `{ input_size, input_resize }` as a .pth's meta holds them (vgg() restores the pipeline from it). */
  meta?: Record<string, unknown>;
}

function jsonValue(props: Map<string, string>, key: string): unknown {
  const text = props.get(key);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Reads `labels`, `input_size` and `resize` from metadata_props.
 * @param model - the decoded ModelProto
 * @param numClasses - the classifier's outputs; labels of another length are dropped with a warning
 * @param warnings - where a dropped value is reported
 * @returns labels and meta when present and well-formed
 * @example metadataOf(model, 5, []).labels // ['a', 'b', 'c', 'd', 'e']
 */
export function metadataOf(model: onnx.IModelProto, numClasses: number, warnings: string[]): OnnxMetadata {
  const props = new Map((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const out: OnnxMetadata = {};
  const labels = jsonValue(props, 'labels');
  if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) {
    if (labels.length === numClasses) out.labels = labels;
    else warnings.push(`metadata_props labels has ${labels.length} names but the model has ${numClasses} classes; labels ignored`);
  }
  const size = jsonValue(props, 'input_size');
  const resize = jsonValue(props, 'resize');
  const side = Array.isArray(size) && size.length === 2 && size[0] === size[1] ? size[0] : size;
  if (typeof side === 'number' && (resize === 'short' || resize === 'squash')) out.meta = { input_size: side, input_resize: resize };
  return out;
}
