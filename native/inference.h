// Inference in plain LibTorch: one forward pass over a batch, returning the
// outputs asked for as host tensors. model_wrap.cc copies the JS options into
// a ForwardRequest and calls runForward on the pool, under the model's lock.
#pragma once

#include <torch/torch.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "vgg_model.h"

namespace vggn {

/** Per-channel (v - mean) / std, applied to 8-bit pixels on the pool rather than in JS. */
struct PixelNormalize {
  std::array<double, 3> mean;
  std::array<double, 3> std;
};

enum class OutputKind {
  kLogits,      // logits, or the last stage without a classifier
  kStages,      // the outputs of config.outIndices (mmcls's backbone outputs)
  kNamed,       // ForwardRequest::names, in that order
  kClassifier,  // the input is the trunk's output [N, 512, h, w] (cached features): logits from the classifier alone
};

struct ForwardRequest {
  OutputKind outputs;
  std::vector<std::string> names;  // kNamed: feature names (isFeatureName), in the order wanted
  std::string precision;           // "fp32", "fp16" (CUDA), "bf16": autocast; "int8": the trunk's (onednn_trunk.h), no autocast
  bool channelsLast;               // run the network on channels_last memory
  // Set: the input is [N, H, W, 3] uint8 pixels, normalised here into float32
  // [N, 3, H, W] whose memory is NHWC. Unset: the input is float32 NCHW.
  std::optional<PixelNormalize> normalize;
};

/**
 * Runs the model in inference mode (eval for the call; a training model goes back
 * to train mode after) on `device`, the convolutional trunk through `trunk` when
 * given (see TrunkRunner). Returns the outputs as toHost() tensors.
 */
NamedTensors runForward(Vgg& model, const torch::Device& device, TrunkRunner* trunk, const torch::Tensor& input,
                        const ForwardRequest& request);

/**
 * [N, H, W, 3] uint8 -> [N, 3, H, W] float32 on `device` whose memory is NHWC (channels_last).
 * The arithmetic is in double, as the TypeScript normalisation does, so both give the same values.
 */
torch::Tensor pixelsToInput(const torch::Tensor& nhwc, const PixelNormalize& p, const torch::Device& device);

}  // namespace vggn
