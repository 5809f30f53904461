// vgg-native: VGG-11/13/16/19 (with and without batch norm) on LibTorch.
export { vgg, Vgg, FEATURE_LAYERS } from './model';
export type {
  FeatureLayer,
  ForwardOptions,
  InputPipeline,
  LayerSummary,
  ModelSummary,
  Precision,
  QuantizationInfo,
  QuantizeOptions,
  QuantizeResult,
  SaveOptions,
  WeightsInfo,
} from './model';
export type { TrainPrecision } from './core/forward';
export type { VggOptions, Device } from './options';
export { ARCHITECTURES } from './arch';
export type { Architecture } from './arch';
export type { Tensor } from './tensor';
export { runtime, setThreads, manualSeed, hostCache, threads } from './runtime';
export type { Runtime, EffectiveSettings, HostCacheInfo, HostCacheOptions } from './runtime';
export { SettingsError } from './settings';
export type { ConvAlgoSetting, DistBackend, GemvSetting, NativeSettings, Settings, TorchrunSettings } from './settings';
export type { AddonInfo } from './binding';
export { preprocess, preprocessBatch, ImageInputError, IMAGENET_MEAN, IMAGENET_STD } from './image/preprocess';
export type { ImageInput, RawPixels, PreprocessOptions, PreprocessBatchOptions, PreprocessResult } from './image/preprocess';
export { IMAGENET_CLASSES } from './labels/imagenet';
export { readWeights, CheckpointError, OnnxFormatError } from './weights';
export type { LoadedWeights, ReadWeightsOptions, WeightsFormat } from './weights';
export type { EmaInfo, InterpretOptions } from './weights/layout';
export { AbortError, ModelError, VggNativeError, errorCode } from './errors';
export { listWeights, downloadWeights, weightsCacheDir, DownloadError, DEFAULT_SOURCE, WEIGHTS_SOURCES } from './hub';
export type {
  CustomEntry,
  DownloadErrorCode,
  DownloadOptions,
  DownloadProgress,
  DownloadResult,
  InputSpec,
  WeightsEntry,
  WeightsSource,
} from './hub';
export type { ArgumentErrorCode, ModelErrorCode } from './errors';
export type { Prediction, ClassifyItem, ClassifyOptions } from './inference/classify';
export { GRADCAM_LAYERS, type GradCamLayer, type ExplainOptions, type Explanation } from './inference/explain';
export type { FeatureOptions } from './inference/features';
export type { BatchOptions } from './inference/pipeline';
export { QueueFullError } from './inference/batcher';
export type { BatchInfo, BatchingOptions } from './inference/batcher';
export type { ArchSpec, Depth } from './arch';
export type {
  NamedTensor,
  NamedTensorSource,
  TensorSource,
  FileTensorSource,
  ArrayTensorSource,
  NativeLayerSummary,
  NativeRuntime,
  StorageDType,
} from './binding';
export type { CheckpointErrorCode, OnnxErrorCode } from './weights/errors';
export type { SaveFormat, SaveLayout } from './weights/save';
export type { FailOn, Interpolation, ResizeMode, Rgb, DecodeOptions } from './image/options';
export type { ImageInputErrorCode, ImageInputErrorDetails } from './image/errors';
export type { CacheFeaturesOptions, FineTuneOptions, FineTuneProgress, OptimizerOptions, ScheduleOptions } from './train/options';
export type { EpochReport, FineTuneReport } from './train/result';
export type { EvaluateOptions, EvaluateResult } from './train/evaluate';
export type { DistributedOptions } from './train/distributed';
export { loadDataset, splitDataset, validateDataset, DatasetError } from './data/dataset';
export type { Dataset, DatasetItem, DatasetSource, LoadedDataset } from './data/dataset';
export type { DatasetProblem, LabelledPath, LoadDatasetOptions, SplitOptions, ValidateOptions, ValidationResult } from './data/dataset';
export type { DatasetErrorCode, DatasetErrorDetails } from './data/errors';
export type { AugmentOptions, ColorJitterOptions, RandomResizedCropOptions } from './image/augment';
export type { OptimizerType } from './train/options';
export type { ScheduleType } from './train/schedule';
