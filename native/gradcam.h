// Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep
// Networks via Gradient-based Localization") in plain LibTorch. Unlike
// inference.cc this runs with autograd on, outside InferenceMode: the trunk
// runs without gradients up to the explained activation A, which becomes a
// leaf; the rest of the network runs with gradients, and torch::autograd::grad
// differentiates the chosen logits with respect to A alone, so no parameter's
// .grad is written. model_wrap.cc copies the JS options into an ExplainRequest
// and calls runGradCam on the pool, under the model's lock.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "inference.h"
#include "vgg_model.h"

namespace vggn {

struct ExplainRequest {
  // The explained activation: stage k's last ConvModule output (after its ReLU),
  // before the stage's max-pool; 0-based (4 = "stage5": conv5_x, the paper's choice).
  size_t stage;
  // Set: one class per image (0 <= c < numClasses). Unset: each image's top-1 class.
  std::optional<std::vector<int64_t>> classIndices;
  // Set: the input is [N, H, W, 3] uint8 pixels (see ForwardRequest::normalize).
  std::optional<PixelNormalize> normalize;
};

struct GradCamResult {
  torch::Tensor maps;                 // [N, H, W] float32 on the host, each map scaled to 0..1 (all 0 when flat)
  torch::Tensor logits;               // [N, numClasses] float32 on the host
  std::vector<int64_t> classIndices;  // the class explained, per image
};

/** A stage's name (kStageNames) -> its index 0..4; nullopt for any other name. */
std::optional<size_t> gradCamStage(const std::string& layer);

/**
 * Grad-CAM maps of `input` for the request's classes: weights w_k = spatial mean of
 * d logit_c / d A_k, map = ReLU(sum_k w_k A_k), upsampled bilinearly (align_corners
 * false) to the input's H x W, then (map - min) / (max - min) per image. The model
 * runs in eval mode (BN running statistics untouched, dropout off) and gets its
 * training mode back afterwards; parameters' gradients are left as they were.
 * Throws c10::Error: no classifier, class index out of range, wrong count of classes.
 */
GradCamResult runGradCam(Vgg& model, const torch::Device& device, const torch::Tensor& input, const ExplainRequest& request);

}  // namespace vggn
