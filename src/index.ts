// vgg-native: VGG-11/13/16/19 (with and without batch norm) on LibTorch.
export { vgg, Vgg, FEATURE_LAYERS } from './model';
export type { FeatureLayer, ForwardOptions, LayerSummary, ModelSummary, Precision } from './model';
export type { VggOptions, Device } from './options';
export { ARCHITECTURES } from './arch';
export type { Architecture } from './arch';
export type { Tensor } from './tensor';
export { runtime, setThreads, manualSeed } from './runtime';
export type { Runtime } from './runtime';
export { preprocess, preprocessBatch, ImageInputError, IMAGENET_MEAN, IMAGENET_STD } from './image/preprocess';
export type { ImageInput, RawPixels, PreprocessOptions, PreprocessBatchOptions, PreprocessResult } from './image/preprocess';
export { IMAGENET_CLASSES } from './labels/imagenet';
export { readWeights, CheckpointError, OnnxFormatError } from './weights';
export type { LoadedWeights, WeightsFormat } from './weights';
export { AbortError } from './queue';
export type { Prediction, ClassifyItem, ClassifyOptions } from './inference/classify';
export type { FeatureOptions } from './inference/features';
export type { BatchOptions } from './inference/pipeline';
