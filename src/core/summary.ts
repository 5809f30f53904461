// Vgg.summary(): parameters, output shapes and multiply-adds layer by layer,
// as arithmetic over the table in arch.ts (no model, no kernels). Shapes
// follow PyTorch's Conv2d / MaxPool2d / AdaptiveAvgPool2d formulas; the
// multiply-adds are counted as mmcv's get_model_complexity_info counts them,
// which produced the "Flops" of mmcls's VGG table (test/model.test.ts checks
// both, test/summary.test.ts checks every row against PyTorch).
import { type ArchSpec, type BackboneOptions, classifierSlots, convSlots, INPUT_CHANNELS, KERNEL_SIZE, POOLED_SIZE, stateShapes } from '../arch';
import type { NativeLayerSummary, NativeSummary } from '../binding';
import { outOfRange } from '../validate';

/** What a summary needs beyond the architecture: the class count (0 = no classifier) and the mmcls options that change shapes or gradients. */
export type SummaryOptions = Pick<BackboneOptions, 'frozenStages' | 'ceilMode' | 'withLastPool'> & { numClasses: number };

/** Kernel and stride of every MaxPool2d closing a stage. */
const POOL = 2;

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * MaxPool2d(2, 2)'s output side (PyTorch's pooling_output_shape without padding):
 * floor((n - 2) / 2) + 1, or with ceilMode ceil((n - 2) / 2) + 1 unless that
 * window would start past the input.
 * @param n - input side in pixels
 * @param ceilMode - round up
 * @returns e.g. 3 for 7 with ceilMode (2 without); 0 for 1 without ceilMode (too small)
 */
export function pooledSide(n: number, ceilMode: boolean): number {
  const out = (ceilMode ? Math.ceil((n - POOL) / POOL) : Math.floor((n - POOL) / POOL)) + 1;
  return ceilMode && (out - 1) * POOL >= n ? out - 1 : out;
}

/**
 * Parameters, shapes and multiply-adds of a VGG for one image of height x width.
 *
 * Rows, in forward order: each `features` module (ConvModule, or the MaxPool2d
 * closing a stage), then with a classifier the AdaptiveAvgPool2d((7, 7)) when
 * the last map is not 7x7 and each `classifier` module. Multiply-adds as mmcv's
 * get_model_complexity_info: a convolution out * (in * 3 * 3 + 1 for the bias),
 * + 1 per element for ReLU, + 2 for batch norm; a Linear in * out + out; ReLU and
 * pooling 1 per input element; Dropout 0. Parameters exclude batch-norm
 * statistics; trainableParams also excludes stages 0..frozenStages-1 (mmcls's
 * _freeze_stages).
 *
 * @param spec - depth and batch norm
 * @param o - class count, frozenStages, ceilMode, withLastPool (dilations do not
 *   matter: each convolution pads by its dilation, keeping the size)
 * @param height - input height in pixels, >= 1
 * @param width - input width in pixels, >= 1
 * @returns totals and one row per module; shapes are [1, C, H, W] or [1, F]
 * @throws RangeError 'ERR_OUT_OF_RANGE' when a MaxPool2d would output nothing (e.g. 31x31 without ceilMode)
 * @example
 * summarize({ depth: 16, batchNorm: false }, { numClasses: 1000, frozenStages: -1, ceilMode: false, withLastPool: true }, 224, 224)
 * // { params: 138357544, trainableParams: 138357544, macs: 15.5e9 (about), layers: [ ... 38 rows ... ] }
 */
export function summarize(spec: ArchSpec, o: SummaryOptions, height: number, width: number): NativeSummary {
  const state = stateShapes(spec, o.numClasses).filter((e) => e.parameter);
  const paramsOf = (module: string): number => state.filter((e) => e.module === module).reduce((n, e) => n + numel(e.shape), 0);
  const layers: NativeLayerSummary[] = [];
  let shape = [1, INPUT_CHANNELS, height, width];
  const add = (name: string, type: string, outShape: number[], macs: number): void => {
    layers.push({ name, type, inShape: shape, outShape, params: paramsOf(name), macs });
    shape = outShape;
  };

  const slots = convSlots(spec.depth);
  slots.forEach((slot, i) => {
    const out = [1, slot.outChannels, shape[2], shape[3]];
    const n = numel(out);
    const type = spec.batchNorm ? 'ConvModule(conv,bn,relu)' : 'ConvModule(conv,relu)';
    add(`features.${slot.featureIndex}`, type, out, n * slot.inChannels * KERNEL_SIZE * KERNEL_SIZE + n + n + (spec.batchNorm ? 2 * n : 0));
    const last = i === slots.length - 1;
    if (last ? o.withLastPool : slots[i + 1].stage !== slot.stage) {
      const name = `features.${slot.featureIndex + 1}`;
      const pooled = [1, shape[1], pooledSide(shape[2], o.ceilMode), pooledSide(shape[3], o.ceilMode)];
      if (pooled[2] < 1 || pooled[3] < 1) {
        throw outOfRange(`Input ${height}x${width} is too small for ${name}: a ${shape[2]}x${shape[3]} map pools to ${pooled[2]}x${pooled[3]}`);
      }
      add(name, 'MaxPool2d', pooled, numel(shape));
    }
  });
  if (o.numClasses > 0) {
    if (shape[2] !== POOLED_SIZE || shape[3] !== POOLED_SIZE) {
      add('avgpool', `AdaptiveAvgPool2d(${POOLED_SIZE},${POOLED_SIZE})`, [1, shape[1], POOLED_SIZE, POOLED_SIZE], numel(shape));
    }
    shape = [1, numel(shape)]; // flatten
    const linears = classifierSlots(o.numClasses);
    for (const [i, l] of linears.entries()) {
      add(`classifier.${l.index}`, 'Linear', [1, l.outFeatures], l.inFeatures * l.outFeatures + l.outFeatures);
      if (i === linears.length - 1) break;
      // Each hidden Linear is followed by ReLU and Dropout (arch.ts).
      add(`classifier.${l.index + 1}`, 'ReLU', [1, l.outFeatures], l.outFeatures);
      add(`classifier.${l.index + 2}`, 'Dropout', [1, l.outFeatures], 0);
    }
  }

  const params = state.reduce((n, e) => n + numel(e.shape), 0);
  const frozen = new Set(slots.filter((s) => s.stage < o.frozenStages).map((s) => `features.${s.featureIndex}`));
  const frozenParams = layers.filter((l) => frozen.has(l.name)).reduce((n, l) => n + l.params, 0);
  const macs = layers.reduce((n, l) => n + l.macs, 0);
  return { params, trainableParams: params - frozenParams, macs, layers };
}
