// Training in plain LibTorch, as pytorch/examples writes it: a function over a
// module, an optimizer and a batch, with no N-API in sight. model_wrap.cc
// copies the JS arguments into these structs (every value, defaults included,
// decided in TypeScript: src/train/options.ts) and calls these on the pool.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "vgg_model.h"

namespace vggn {

class Distributed;

enum class OptimizerType { kSgd, kAdamW };

/** Two parameter groups, backbone then head (the classifier's last Linear), with their own learning rates. */
struct OptimizerConfig {
  OptimizerType type;
  double lr;      // backbone group
  double headLr;  // head group
  double weightDecay;
  double momentum;              // SGD only
  bool nesterov;                // SGD only
  std::array<double, 2> betas;  // AdamW only
  double eps;                   // AdamW only
};

/** The optimizer over `model`'s current parameters (build a new one after resetHead). */
std::unique_ptr<torch::optim::Optimizer> makeOptimizer(Vgg& model, const OptimizerConfig& config);

struct TrainStepOptions {
  double labelSmoothing;  // cross-entropy label smoothing, 0 = none
  double clipGradNorm;    // max global L2 norm of the gradients, 0 = no clipping
  double lr;              // backbone group's learning rate for this step
  double headLr;          // head group's (unused when the model has no head)
  std::string precision;  // "fp32", "fp16" (CUDA), "bf16": autocast for the forward
  bool update;            // false: gradients only (allreduced, clipped), weights unchanged
  // true: `input` is the trunk's output (cached features of a frozen trunk, [N, 512, h, w]) and
  // only the classifier runs; false: `input` is images [N, 3, H, W] through the whole network.
  bool fromFeatures;
  // Distributed: this rank's share of the global batch times the world size, so the
  // averaged gradient is the global batch's mean even when shards differ. Absent: unscaled.
  std::optional<double> lossScale;
  // Dropout's draws: the process-wide generator seeded with this under its lock.
  // Absent: the generator continues from where it is.
  std::optional<uint64_t> seed;
};

struct TrainStepResult {
  double loss = 0;      // mean cross-entropy of the batch (0 for an empty shard)
  int64_t correct = 0;  // top-1 hits
  double gradNorm = 0;  // total gradient norm before clipping; 0 when not clipping
};

/**
 * One step: forward (train mode), cross-entropy with label smoothing, backward,
 * gradient allreduce (when `distributed`), clipping, learning rates, optimizer step.
 * `input` is a CPU float32 [N, 3, H, W] batch and `labels` CPU int64 [N]. An empty
 * batch (a rank's empty shard) contributes zero gradients and needs `distributed`.
 * Throws c10::Error for a non-finite loss, before changing any weight.
 */
TrainStepResult trainStep(Vgg& model, torch::optim::Optimizer& optimizer, Distributed* distributed, const torch::Device& device,
                          const torch::Tensor& input, const torch::Tensor& labels, const TrainStepOptions& options);

/** Optimizer state (momentum buffers, Adam moments) as a LibTorch archive, for resuming. */
void saveOptimizer(torch::optim::Optimizer& optimizer, const std::string& path);
/** Reads what saveOptimizer wrote into an optimizer built the same way; tensors go to `device`. */
void loadOptimizer(torch::optim::Optimizer& optimizer, const std::string& path, const torch::Device& device);

}  // namespace vggn
