// Grad-CAM over the VGG trunk: see gradcam.h for the method and its guarantees.
#include "gradcam.h"

#include "eval_scope.h"
#include "runtime.h"

namespace vggn {

namespace F = torch::nn::functional;

std::optional<size_t> gradCamStage(const std::string& layer) {
  for (size_t s = 0; s < kNumStages; ++s)
    if (layer == kStageNames[s]) return s;
  return std::nullopt;
}

namespace {

/**
 * Runs the trunk layer by layer (ConvModules and the stages' 2x2 max-pools, as
 * VggImpl::runStage does) and returns {A, trunk output}: A is `stage`'s last
 * ConvModule output, made a leaf that requires grad; only the layers after it
 * record the graph.
 */
std::pair<torch::Tensor, torch::Tensor> trunkWithLeaf(Vgg& model, torch::Tensor x, size_t stage) {
  auto layers = model->trunkLayers();
  bool ceil = model->config().ceilMode;
  torch::Tensor leaf;
  // The last ConvModule of `stage`: the activation Grad-CAM explains.
  size_t target = layers.size();
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].stage == stage && layers[i].conv) target = i;
  TORCH_CHECK(target < layers.size(), "this model has no stage ", stage + 1);
  for (size_t i = 0; i < layers.size(); ++i) {
    // Gradients are only needed after the leaf: before it, no graph at all.
    torch::AutoGradMode grad(i > target);
    const auto& l = layers[i];
    x = l.conv ? l.conv->forward(x) : F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2).ceil_mode(ceil));
    if (i == target) {
      leaf = x.detach().requires_grad_(true);
      x = leaf;
    }
  }
  return {leaf, x};
}

}  // namespace

GradCamResult runGradCam(Vgg& model, const torch::Device& device, const torch::Tensor& input, const ExplainRequest& r) {
  TORCH_CHECK(model->config().numClasses > 0, "this model has no classifier (numClasses is 0): Grad-CAM needs class scores");
  EvalScope eval(model);
  auto x = r.normalize ? pixelsToInput(input, *r.normalize, device) : toDevice(input, device);
  x = x.contiguous();
  const int64_t n = x.size(0), height = x.size(2), width = x.size(3);
  auto [leaf, trunk] = trunkWithLeaf(model, x, r.stage);
  torch::AutoGradMode grad(true);
  auto logits = model->classifierOn(trunk);
  const int64_t numClasses = logits.size(1);

  GradCamResult out;
  if (r.classIndices) {
    TORCH_CHECK(static_cast<int64_t>(r.classIndices->size()) == n, "explain: ", r.classIndices->size(), " class indices for ", n,
                " images");
    for (auto c : *r.classIndices) TORCH_CHECK(c >= 0 && c < numClasses, "class index ", c, " is outside 0..", numClasses - 1);
    out.classIndices = *r.classIndices;
  } else {
    auto top = logits.detach().argmax(1).to(torch::kCPU);
    for (int64_t i = 0; i < n; ++i) out.classIndices.push_back(top[i].item<int64_t>());
  }
  auto cls = torch::tensor(out.classIndices, torch::kInt64).to(logits.device()).unsqueeze(1);
  // Images are independent in eval mode: one backward of the summed scores gives each its own gradient.
  auto score = logits.gather(1, cls).sum();
  auto grads = torch::autograd::grad({score}, {leaf})[0];

  torch::NoGradGuard noGrad;
  auto weights = grads.mean({2, 3}, /*keepdim=*/true);                // [N, C, 1, 1]
  auto cam = torch::relu((weights * leaf).sum(1, /*keepdim=*/true));  // [N, 1, h, w]
  cam = F::interpolate(cam,
                       F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width}).mode(torch::kBilinear).align_corners(false));
  cam = cam.squeeze(1);
  auto flat = cam.flatten(1);
  auto lo = std::get<0>(flat.min(1, /*keepdim=*/true)).unsqueeze(2);
  auto range = (std::get<0>(flat.max(1, /*keepdim=*/true)).unsqueeze(2) - lo);
  // A flat map (no evidence for the class) is all zeros rather than 0/0.
  cam = torch::where(range > 0, (cam - lo) / range.clamp_min(1e-30), torch::zeros_like(cam));
  out.maps = toHost(cam.contiguous());
  out.logits = toHost(logits.detach());
  return out;
}

}  // namespace vggn
