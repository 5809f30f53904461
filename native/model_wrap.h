// The N-API class behind the TypeScript `Vgg` (declared as NativeModel in
// src/binding.ts): every heavy call runs in a PromiseWorker; the model lives in
// a shared state that in-flight workers keep alive, so dispose() never waits
// and never frees memory under a kernel.
//
// Conventions for every method below:
// - Arguments arrive validated and complete from TypeScript. A missing or
//   mistyped field throws a TypeError synchronously, naming it
//   ("trainStep: options.lr must be an array of 2 numbers"); C++ applies no defaults.
// - "Async" methods return a Promise; LibTorch errors on the pool (c10::Error,
//   std::exception) reject it with an Error carrying LibTorch's message.
// - Once dispose() ran, every method but dispose() and isDisposed() throws
//   Error "this model was disposed; ...".
// - Calls on one model run one at a time (ModelState::mu), in the order they reach the pool.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "calibrate.h"
#include "vgg_model.h"

namespace vggn {

class Distributed;

struct ModelState {
  ModelState(const VggConfig& config, torch::Device device) : model(config), device(device) {}
  Vgg model;
  torch::Device device;
  std::mutex mu;         // one kernel sequence at a time per model
  std::mutex structure;  // the module tree (resetHead swaps the head): stateShapes reads it without waiting on kernels
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::shared_ptr<Distributed> distributed;
  // CPU inference trunks by precision ("fp32", "bf16", "int8"), made on first use; under `mu`.
  std::map<std::string, std::unique_ptr<TrunkRunner>> trunks;
  // int8: the calibration being accumulated, and the scales in use (empty: not quantised).
  CalibrationStats calibration;
  std::vector<float> int8Scales;
  /**
   * The oneDNN trunk for this precision, or nullptr (GPU, engine off, no native bf16).
   * "int8" throws instead of returning nullptr: not calibrated, not the CPU, engine off.
   */
  TrunkRunner* trunkFor(const std::string& precision);
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  /**
   * Model.create(config) -> Promise<Model>. Async: allocation, initialisation and the
   * device copy run on the pool. config (NativeModelConfig): depth (11|13|16|19),
   * batchNorm, numClasses (0 = no classifier), outIndices (int[]; [] = mmcls's default),
   * frozenStages (-1 = none), normEval, ceilMode, withLastPool, dilations (5 ints),
   * dropout, device ("cpu" | "cuda" | "cuda:N"); optional seed (absent: unseeded) and
   * initWeights (absent or true: mmcls's initialisation; false: left for a checkpoint).
   * Rejects: unknown depth, wrong dilations count, unknown or missing device (CUDA advice).
   */
  static Napi::Value CreateAsync(const Napi::CallbackInfo& info);
  /** Not callable from JS: create() passes the built state as an External. Throws TypeError otherwise. */
  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

 private:
  std::shared_ptr<ModelState> state(const Napi::Env& env) const;

  /**
   * forward(data, shape, options) -> Promise<Array<{ name, dtype: 'float32', shape, data: Float32Array }>>. Async.
   * data: Float32Array NCHW [N, 3, H, W], or Uint8Array [N, H, W, 3] pixels with options.normalize;
   * shape: int[] (data's length must match). options: outputs ('logits' | 'stages' | layer
   * names among stage1..stage5, pool5, fc6, fc7, logits | 'classifier': data is the trunk's
   * output [N, 512, h, w] and only the classifier runs, giving logits), precision ('fp32' | 'fp16' | 'bf16' | 'int8':
   * the int8 trunk, after setQuantization),
   * channelsLast (bool), optional normalize { mean: 3 numbers, std: 3 numbers } (pixels only).
   * Runs in eval mode under InferenceMode; outputs are host copies in the order asked.
   * Throws: TypeError (wrong array type, options, pixels without normalize or the reverse),
   * RangeError (shape not non-negative integers, length mismatch, unknown layer name).
   * Rejects: input too small for the network, fp16 on the CPU, fc6/fc7/logits without a classifier, int8 without
   * scales (setQuantization) or off the CPU.
   */
  Napi::Value Forward(const Napi::CallbackInfo& info);
  /**
   * explain(data, shape, options) -> Promise<{ maps: NamedTensor 'maps' [N, H, W], logits: NamedTensor 'logits'
   * [N, numClasses], classIndices: number[] }>. Async. Grad-CAM (gradcam.h): data and shape as forward();
   * options: layer ('stage1'..'stage5': that stage's last conv output before its pool), optional
   * classIndices (int[N]; absent: each image's top-1 class), optional normalize (pixels only, as forward()).
   * Runs in eval mode with autograd (not InferenceMode), fp32; the training mode, parameters, their
   * gradients and BN statistics are as before afterwards. Maps are 0..1 per image at H x W.
   * Throws: TypeError (wrong array type, options, pixels without normalize or the reverse), RangeError (unknown layer).
   * Rejects: no classifier, class index out of range or count != N, input too small for the network.
   */
  Napi::Value Explain(const Napi::CallbackInfo& info);
  /**
   * loadStateDict(entries) -> Promise<void>. Async. entries: Array<{ name, tensor }> with
   * tensor { kind: 'array', data: Float32Array | BigInt64Array, shape } or { kind: 'file',
   * path, byteOffset, dtype, storageNumel, storageOffset, shape, stride, bigEndian? } (read
   * straight from the file; bigEndian absent = little-endian). Copies into the named tensors.
   * Throws: TypeError (malformed entry), Error (unknown storage dtype).
   * Rejects: "the model has no tensor named ...", "loading '<name>': shape mismatch | <file error>".
   */
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  /**
   * stateDict(copy?) -> Promise<Array<{ name, dtype: 'float32' | 'int64', shape, data }>>. Async.
   * Every parameter and buffer in PyTorch's state_dict order, as Float32Array / BigInt64Array.
   * copy absent or true: independent copies; false: views of the live weights (use inside the queue).
   */
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  /** stateShapes() -> Array<{ name, shape, dtype }>. Sync; never waits on a running kernel. */
  Napi::Value StateShapes(const Napi::CallbackInfo& info);
  /**
   * resetHead(numClasses, seed?) -> Promise<void>. Async. A fresh last Linear (N(0, 0.01), zero
   * bias) for numClasses; seed absent: unseeded. Drops the optimizer (configure it again).
   * Rejects: no classifier (numClasses 0 at create), numClasses <= 0.
   */
  Napi::Value ResetHead(const Napi::CallbackInfo& info);
  /**
   * composeClassifierInput(scale, shift) -> Promise<void>. Async. scale, shift: Float32Array [C]
   * (C = the trunk's channels, 512): fc6 is rewritten to compute on x * scale + shift per channel
   * of the trunk's output (VggImpl::composeClassifierInput). Rejects: no classifier, wrong length.
   */
  Napi::Value ComposeClassifierInput(const Napi::CallbackInfo& info);
  /**
   * configureOptimizer(config) -> Promise<void>. Async. config (NativeOptimizerConfig): type
   * ('sgd' | 'adamw'), lr (backbone group), headLr (head group), momentum, nesterov (SGD),
   * weightDecay, betas ([2 numbers]), eps (AdamW). All fields required whatever the type.
   * Replaces any optimizer state (momentum buffers, moments).
   */
  Napi::Value ConfigureOptimizer(const Napi::CallbackInfo& info);
  /**
   * trainStep(data, shape, labels, options) -> Promise<{ loss, correct, gradNorm }>. Async.
   * data: Float32Array [N, 3, H, W]; labels: BigInt64Array [N]. options: labelSmoothing, clipGradNorm
   * (0 = off), lr ([backbone, head]), precision; optional step (absent or true: update the weights;
   * false: gradients only), lossScale (absent: unscaled), seed (absent: dropout not reseeded),
   * features (absent or false: data is images; true: data is the trunk's output [N, 512, h, w], e.g.
   * cached features of a frozen trunk, and only the classifier runs).
   * loss: the batch's mean cross-entropy; correct: top-1 hits; gradNorm: before clipping, 0 when off.
   * N = 0 (a rank's empty shard) contributes zero gradients; only in a process group.
   * Rejects: no optimizer, empty batch outside a process group, non-finite loss (weights unchanged).
   */
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  /**
   * calibrate(data, shape, options) -> Promise<number>. Async. Runs the float32 trunk on a batch
   * (input as forward(): float32 NCHW, or pixels with options.normalize) and accumulates each
   * convolution's input statistics (calibrate.h); options.reset (bool) starts over first.
   * Resolves with the number of images accumulated so far.
   */
  Napi::Value Calibrate(const Napi::CallbackInfo& info);
  /**
   * finishCalibration(options) -> Promise<NamedTensor 'scales' [convolutions]>. Async. options: method
   * ('minmax' | 'percentile'), percentile (0..100]. The statistics stay (finish again with another method).
   * Rejects: no batch accumulated.
   */
  Napi::Value FinishCalibration(const Napi::CallbackInfo& info);
  /**
   * setQuantization(scales | null) -> Promise<void>. Async. Installs per-convolution input scales
   * (Float32Array, one per convolution, positive) for precision 'int8', building the int8 trunk;
   * null removes them. Rejects: wrong count, not the CPU, engine off, no VNNI/AMX.
   */
  Napi::Value SetQuantization(const Napi::CallbackInfo& info);
  /** saveOptimizer(path) -> Promise<void>. Async. The optimizer's state as a LibTorch archive. Rejects: no optimizer, I/O. */
  Napi::Value SaveOptimizer(const Napi::CallbackInfo& info);
  /**
   * loadOptimizer(path) -> Promise<void>. Async. Into the configured optimizer (same type and
   * groups as when saved). Rejects: no optimizer, unreadable or mismatched archive.
   */
  Napi::Value LoadOptimizer(const Napi::CallbackInfo& info);
  /**
   * setDistributed(config) -> Promise<void>. Async; blocks a pool thread until every rank joins.
   * config: masterAddr, masterPort, rank, worldSize, timeoutMs. Then broadcasts rank 0's weights.
   * Rejects: no c10d in this LibTorch, rank outside the world, rendezvous timeout.
   */
  Napi::Value SetDistributed(const Napi::CallbackInfo& info);
  /** broadcastWeights() -> Promise<void>. Async. Rank 0's weights to every rank. Rejects: no process group joined. */
  Napi::Value BroadcastWeights(const Napi::CallbackInfo& info);
  /** device() -> string ("cpu", "cuda:0"). Sync. */
  Napi::Value Device(const Napi::CallbackInfo& info);
  /** dispose() -> undefined. Sync, idempotent; frees the model once in-flight calls finish. */
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  /** isDisposed() -> boolean. Sync. */
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  void accountMemory(Napi::Env env);

  std::shared_ptr<ModelState> state_;
  int64_t externalBytes_ = 0;
};

}  // namespace vggn
