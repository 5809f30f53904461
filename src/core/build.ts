// From resolved vgg() options to a ModelCore: fetch named weights into the
// cache (registry keys, 'imagenet', URLs), read the weights (if any), settle
// the architecture and class count, build the native model, load.
import { archName, type ArchSpec, type BackboneOptions, isHeadTensor, parseArch } from '../arch';
import { loadBinding, type NativeModel } from '../binding';
import { ModelError } from '../errors';
import { IMAGENET_CLASSES } from '../labels/imagenet';
import type { ResolvedVggOptions } from '../options';
import { resolveWeightsFile } from '../hub/resolve';
import type { WeightsEntry } from '../hub/registry';
import { setThreads } from '../runtime';
import { checkLabels, invalidRange } from '../validate';
import { checkStateAgainstModel, partitionForModel, readWeights, type LoadedWeights } from '../weights';
import { ModelCore, nativeError, quantizationFromMeta } from './model-core';

/**
 * Builds the model core vgg() wraps.
 * @throws ModelError 'ARCH_MISMATCH'; DownloadError from the hub; CheckpointError / OnnxFormatError from the readers.
 */
export async function buildCore(options: ResolvedVggOptions): Promise<ModelCore> {
  if (options.threads !== undefined) setThreads(options.threads);
  const binding = loadBinding();
  const { r, entry } = await localWeights(options);
  const weights = r.weights ? await readWeights(r.weights, { ema: r.ema }) : undefined;
  const spec = settleArch(r, weights);
  const ckptClasses = weights?.numClasses;
  const numClasses = r.numClasses ?? ckptClasses ?? 1000;
  const headDiffers = ckptClasses !== undefined && ckptClasses !== numClasses;
  // Initialising 130M+ parameters only to overwrite them costs more than reading them.
  const fullyLoaded = weights !== undefined && r.strict && !headDiffers;
  const ceilMode = weights?.ceilMode ?? r.config.ceilMode;
  if (r.ceilModeGiven && ceilMode !== r.config.ceilMode) {
    throw invalidRange('options.ceilMode', `${ceilMode} (the MaxPool ceil_mode of ${r.weights}) or no value`, r.config.ceilMode);
  }
  const { frozenStages, normEval, withLastPool, dilations } = r.config;
  // mmcls's default out_indices: the logits, or the last stage without a classifier.
  const outIndices = r.config.outIndices.length > 0 ? r.config.outIndices : [numClasses > 0 ? 5 : 4];
  const backbone: BackboneOptions = { outIndices, frozenStages, normEval, ceilMode, withLastPool, dilations };
  const native = await binding.Model.create({
    ...r.config,
    ...backbone,
    depth: spec.depth,
    batchNorm: spec.batchNorm,
    numClasses,
    device: r.device,
    initWeights: !fullyLoaded,
  }).catch((e: unknown) => {
    throw nativeError(e); // e.g. CUDA asked of a CPU-only LibTorch
  });
  try {
    const skipped = weights ? await loadInto(native, weights, r, fullyLoaded) : [];
    if (r.labels) checkLabels('options.labels', r.labels, numClasses);
    const labels = r.labels ?? (weights?.labels && weights.labels.length === numClasses ? weights.labels : defaultLabels(numClasses));
    const info = weights
      ? {
          path: r.weights!,
          format: weights.format,
          layout: weights.layout,
          skipped,
          warnings: weights.warnings,
          ...(weights.ema ? { ema: weights.ema } : {}),
        }
      : undefined;
    const core = new ModelCore(native, spec, numClasses, labels, info, backbone);
    // A checkpoint saved after quantize(): int8 at once, without recalibrating (kept but unused where int8 cannot run).
    const quantization = quantizationFromMeta(weights?.meta?.quantization);
    if (quantization) await core.setQuantization(quantization, false);
    const size = weights?.meta?.input_size;
    const resize = weights?.meta?.input_resize;
    if (typeof size === 'number' && Number.isInteger(size) && size >= 32 && (resize === 'squash' || resize === 'short')) {
      core.inputPipeline = { size, resize };
    } else if (entry) {
      // The pipeline the published accuracy was measured with (short side 256, centre 224 = 'short' at 224).
      core.inputPipeline = { size: entry.input.cropSize, resize: 'short' };
    }
    return core;
  } catch (e) {
    native.dispose();
    throw nativeError(e);
  }
}

/** The options with `weights` as a local file (fetched into the cache when it names registry weights or a URL). */
async function localWeights(r: ResolvedVggOptions): Promise<{ r: ResolvedVggOptions; entry?: WeightsEntry }> {
  if (!r.weights) return { r };
  const found = await resolveWeightsFile(r.weights, {
    ...(r.arch ? { arch: r.arch } : {}),
    ...(r.onDownloadProgress ? { onProgress: r.onDownloadProgress } : {}),
  });
  return { r: { ...r, weights: found.file }, ...(found.entry ? { entry: found.entry } : {}) };
}

/** The architecture asked for, or the weights', or vgg16; a contradiction is an error. */
function settleArch(r: ResolvedVggOptions, weights: LoadedWeights | undefined): ArchSpec {
  if (!weights) return parseArch(r.arch ?? 'vgg16');
  const found = archName(weights.arch);
  if (r.arch && r.arch !== found) {
    throw new ModelError(
      'ARCH_MISMATCH',
      `arch '${r.arch}' was asked for, but ${r.weights} holds a ${found} (${weights.layout} layout); ` + `pass arch '${found}' or omit it`,
    );
  }
  return weights.arch;
}

/** Loads what fits; returns the names re-initialised instead (a new head, or strict: false leftovers). */
async function loadInto(native: NativeModel, weights: LoadedWeights, r: ResolvedVggOptions, fullyLoaded: boolean): Promise<string[]> {
  const entries = [...weights.tensors].map(([name, tensor]) => ({ name, tensor }));
  const modelState = native.stateShapes();
  if (fullyLoaded) {
    const problem = checkStateAgainstModel(modelState, entries, { strict: true, file: r.weights });
    if (problem) throw problem;
    await native.loadStateDict(entries);
    return [];
  }
  // A numClasses other than the checkpoint's (or strict: false) re-initialises what does not fit.
  const p = partitionForModel(modelState, entries);
  if (r.strict && p.skipped.some((n) => !isHeadTensor(n))) {
    throw checkStateAgainstModel(
      modelState,
      entries.filter((e) => !isHeadTensor(e.name)),
      { strict: true, file: r.weights },
    )!;
  }
  await native.loadStateDict(p.fit);
  return p.skipped;
}

function defaultLabels(numClasses: number): string[] | undefined {
  return numClasses === 1000 ? [...IMAGENET_CLASSES] : undefined;
}
