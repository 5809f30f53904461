// What the exported file says about itself: producer, doc strings and the
// metadata_props a user of the file needs to feed it (preprocessing, labels,
// architecture). Every metadata value is JSON, so `JSON.parse` reads each one.
import type { onnx } from 'onnx-proto';
import { archName } from '../../../arch';
import { packageVersion } from '../../../fs/package';
import type { ResolvedExportContent } from './content';
import { INPUT_NAME, type OnnxLayer } from './graph';
import { QDQ_DESCRIPTION } from './qdq';

/** producer_name of every file the package writes. */
export const PRODUCER_NAME = 'vgg-native';

/** The metadata_props entries, in a fixed order; see writeOnnx's documentation for each key. */
export function metadataProps(c: ResolvedExportContent, layers: readonly OnnxLayer[]): onnx.IStringStringEntryProto[] {
  const last = layers[layers.length - 1];
  const p = c.preprocessing;
  const props: Array<[string, unknown]> = [
    ['arch', archName(c.arch)],
    ['num_classes', c.numClasses],
    ['backbone', { ceil_mode: c.backbone.ceilMode, with_last_pool: c.backbone.withLastPool, dilations: c.backbone.dilations }],
    ['input_name', INPUT_NAME],
    ['input_shape', ['N', 3, ...p.inputSize]],
    ['output_name', last.output],
    ['output_shape', last.outputShape],
    ['input_size', p.inputSize],
    ['resize', p.resize],
    ...(p.resizeShort !== undefined ? [['resize_short', p.resizeShort] as [string, unknown]] : []),
    ['interpolation', p.interpolation],
    ['channel_order', 'RGB'],
    ['pixel_range', [0, 255]],
    ['mean', p.mean],
    ['std', p.std],
    ...(c.labels ? [['labels', c.labels] as [string, unknown]] : []),
    // The scales as the file holds them (float32), so a reader can requantize exactly.
    ...(c.quantization
      ? [['quantization', { ...QDQ_DESCRIPTION, activation_scales: c.quantization.activationScales.map((s) => Math.fround(s)) }] as [string, unknown]]
      : []),
  ];
  const own = new Set(props.map(([key]) => key));
  for (const [key, value] of Object.entries(c.meta)) if (!own.has(key)) props.push([key, value]);
  return props.map(([key, value]) => ({ key, value: JSON.stringify(value) }));
}

/** ModelProto.doc_string: what goes in, what comes out, how to prepare it. */
export function modelDocString(c: ResolvedExportContent, layers: readonly OnnxLayer[]): string {
  const last = layers[layers.length - 1];
  const [h, w] = c.preprocessing.inputSize;
  const p = c.preprocessing;
  const sizing =
    p.resize === 'short'
      ? `short side resized to ${p.resizeShort} (${p.interpolation}), centre crop ${h}x${w}`
      : `resized to ${h}x${w} (${p.interpolation})`;
  const out =
    c.numClasses > 0
      ? `'${last.output}' float32 [N, ${c.numClasses}]: raw class scores before softmax`
      : `'${last.output}' float32 [${last.outputShape.join(', ')}]: the last stage's feature map`;
  const qdq = c.quantization
    ? ' The graph is the int8 QDQ form (QuantizeLinear / DequantizeLinear; batch norm folded, int8 per-channel weights, int8 input / uint8 activations): see metadata_props quantization.'
    : '';
  return (
    `${archName(c.arch)} exported by ${PRODUCER_NAME} ${packageVersion()}. ` +
    `Input '${INPUT_NAME}' float32 [N, 3, ${h}, ${w}]: RGB, ${sizing}, then (pixel - mean) / std per channel with pixels on 0..255, ` +
    `mean [${p.mean.join(', ')}], std [${p.std.join(', ')}]. Output ${out}. metadata_props repeat these facts as JSON values.${qdq}`
  );
}
