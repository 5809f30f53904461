#include "inference.h"

#include <set>

#include "eval_scope.h"
#include "runtime.h"

namespace vggn {

torch::Tensor pixelsToInput(const torch::Tensor& nhwc, const PixelNormalize& p, const torch::Device& device) {
  auto dbl = torch::TensorOptions().dtype(torch::kFloat64);
  auto mean = torch::tensor(std::vector<double>(p.mean.begin(), p.mean.end()), dbl).to(device);
  auto stdv = torch::tensor(std::vector<double>(p.std.begin(), p.std.end()), dbl).to(device);
  auto x = nhwc.to(device).to(torch::kFloat64).sub_(mean).div_(stdv).to(torch::kFloat32);
  return x.permute({0, 3, 1, 2});
}

NamedTensors runForward(Vgg& model, const torch::Device& device, TrunkRunner* trunk, const torch::Tensor& input, const ForwardRequest& r) {
  c10::InferenceMode inference;
  EvalScope eval(model);
  auto x = r.normalize ? pixelsToInput(input, *r.normalize, device) : toDevice(input, device);
  // Normalised pixels are already channels_last in memory (a permuted NHWC view), which
  // both the oneDNN engine and LibTorch's kernels take as is: no NCHW copy of the batch.
  if (r.channelsLast) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  NamedTensors out;
  {
    AutocastScope autocast(r.precision, device);
    switch (r.outputs) {
      case OutputKind::kLogits: out.emplace_back("logits", model->forward(x, trunk)); break;
      case OutputKind::kStages: out = model->forwardStages(x, trunk); break;
      case OutputKind::kClassifier: out.emplace_back("logits", model->classifierOn(x, trunk)); break;
      case OutputKind::kNamed: {
        auto named = model->forwardNamed(x, std::set<std::string>(r.names.begin(), r.names.end()), trunk);
        for (const auto& n : r.names) out.emplace_back(n, named.at(n));
        break;
      }
    }
  }
  for (auto& o : out) o.second = toHost(o.second);
  return out;
}

}  // namespace vggn
