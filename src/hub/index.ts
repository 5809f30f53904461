// The weights hub: published VGG checkpoints by name, fetched into a
// per-user cache, verified, shared safely between processes.
export { listWeights, DEFAULT_SOURCE, WEIGHTS_SOURCES } from './registry';
export type { InputSpec, WeightsEntry, WeightsSource } from './registry';
export { downloadWeights, resolveWeightsFile, looksLikeUrl } from './resolve';
export type { DownloadOptions, DownloadResult } from './resolve';
export type { DownloadProgress } from './download';
export { weightsCacheDir } from './cache';
export { DownloadError } from './errors';
export type { DownloadErrorCode } from './errors';
export type { CustomEntry } from './registry-file';
