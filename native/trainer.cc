#include "trainer.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <mutex>
#include <vector>

#include "distributed.h"
#include "runtime.h"
#include "torch_compat.h"

namespace vggn {

namespace F = torch::nn::functional;

namespace {

// One construction for every optimizer: `options` carries all hyper-parameters but the
// learning rate, which each group (backbone, then head when there is one) sets for itself.
template <typename Optimizer, typename Options>
std::unique_ptr<torch::optim::Optimizer> grouped(Vgg& model, const Options& options, double lr, double headLr) {
  auto withLr = [&](double groupLr) {
    auto o = std::make_unique<Options>(options);
    o->lr(groupLr);
    return o;
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(model->backboneParameters(), withLr(lr));
  auto head = model->headParameters();
  if (!head.empty()) groups.emplace_back(head, withLr(headLr));
  return std::make_unique<Optimizer>(groups, Options(options).lr(lr));
}

/**
 * Gradients dropped rather than zeroed: backward then hands each parameter its
 * freshly computed gradient instead of adding it to a zeroed one, two passes
 * over 129 M floats (VGG's classifier) fewer per step.
 */
void dropGradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

bool fusable(const torch::Tensor& p) {
  const auto& g = p.grad();
  return p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() && g.defined() &&
         g.scalar_type() == torch::kFloat32 && g.is_contiguous() && g.numel() == p.numel();
}

/**
 * torch::optim::SGD's step (LibTorch 1.13, torch/csrc/api/src/optim/sgd.cpp) in one
 * pass per parameter: the same arithmetic element by element, in the same order
 * (d = g + wd * p; the momentum buffer = d on the first step, else b * momentum +
 * (1 - dampening) * d; Nesterov d + momentum * b; p += -lr * update) and the same
 * state (SGDParamState's momentum_buffer under the parameter's key), so saved
 * optimizer state stays LibTorch's. LibTorch makes a temporary for d and passes over
 * memory 11 times per element; this reads p, grad and the buffer once and writes p
 * and the buffer once: the step is memory-bound on the classifier's 129 M weights.
 * Returns false (nothing done) unless every parameter with a gradient is a
 * contiguous CPU float32 tensor.
 */
bool fusedSgdStep(torch::optim::Optimizer& optimizer) {
  auto* sgd = dynamic_cast<torch::optim::SGD*>(&optimizer);
  if (!sgd) return false;
  for (auto& group : sgd->param_groups())
    for (auto& p : group.params())
      if (p.grad().defined() && !fusable(p)) return false;
  torch::NoGradGuard noGrad;
  auto& state = sgd->state();
  for (auto& group : sgd->param_groups()) {
    auto& o = static_cast<torch::optim::SGDOptions&>(group.options());
    const float wd = static_cast<float>(o.weight_decay()), momentum = static_cast<float>(o.momentum());
    const float keep = static_cast<float>(1 - o.dampening()), step = static_cast<float>(-1 * o.lr());
    const bool nesterov = o.nesterov();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      float* w = p.data_ptr<float>();
      const float* g = p.grad().data_ptr<float>();
      float* buf = nullptr;
      bool first = false;
      if (momentum != 0) {
        auto key = compat::optimizerStateKey<std::decay_t<decltype(state)>::key_type>(p);
        auto it = state.find(key);
        if (it == state.end()) {
          auto s = std::make_unique<torch::optim::SGDParamState>();
          s->momentum_buffer(torch::empty_like(p));
          it = state.emplace(key, std::move(s)).first;
          first = true;
        }
        buf = static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer().data_ptr<float>();
      }
      at::parallel_for(0, p.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          float d = wd != 0 ? g[i] + wd * w[i] : g[i];
          if (buf) {
            float b = first ? d : buf[i] * momentum + keep * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
          }
          w[i] = w[i] + step * d;
        }
      });
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(Vgg& model, const OptimizerConfig& c) {
  using namespace torch::optim;
  switch (c.type) {
    case OptimizerType::kSgd:
      return grouped<SGD>(model, SGDOptions(c.lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(c.weightDecay), c.lr, c.headLr);
    case OptimizerType::kAdamW:
      return grouped<AdamW>(model, AdamWOptions(c.lr).betas({c.betas[0], c.betas[1]}).eps(c.eps).weight_decay(c.weightDecay), c.lr,
                            c.headLr);
  }
  TORCH_CHECK(false, "unknown optimizer type");
}

TrainStepResult trainStep(Vgg& model, torch::optim::Optimizer& optimizer, Distributed* distributed, const torch::Device& device,
                          const torch::Tensor& input, const torch::Tensor& labels, const TrainStepOptions& o) {
  TrainStepResult out;
  if (!model->is_training()) model->train(true);
  dropGradients(optimizer);
  auto params = model->parameters();
  if (input.size(0) > 0) {
    auto x = toDevice(input, device);
    auto y = labels.to(device, torch::kInt64);
    torch::Tensor logits;
    {
      // Dropout draws from the process-wide generator: seed and draw in one go.
      std::unique_lock<std::mutex> rng(generatorMutex(), std::defer_lock);
      if (o.seed) {
        rng.lock();
        torch::manual_seed(*o.seed);
      }
      AutocastScope autocast(o.precision, device);
      logits = o.fromFeatures ? model->classifierOn(x) : model->forward(x);
    }
    auto loss = F::cross_entropy(logits.to(torch::kFloat32), y, F::CrossEntropyFuncOptions().label_smoothing(o.labelSmoothing));
    (o.lossScale ? loss * *o.lossScale : loss).backward();
    out.loss = loss.item<double>();
    out.correct = (logits.argmax(1) == y).sum().item<int64_t>();
  } else {
    // An empty shard still takes part in the allreduce (with zero gradients).
    TORCH_CHECK(distributed, "a training batch needs at least one image");
    for (auto& p : params)
      if (p.requires_grad()) p.mutable_grad() = torch::zeros_like(p);
  }
  TORCH_CHECK(std::isfinite(out.loss), "the training loss is ", out.loss, "; the step was not applied");
  if (distributed) distributed->averageGradients(params);
  if (o.clipGradNorm > 0) out.gradNorm = torch::nn::utils::clip_grad_norm_(params, o.clipGradNorm);
  auto& groups = optimizer.param_groups();
  const double rates[] = {o.lr, o.headLr};
  for (size_t i = 0; i < groups.size() && i < 2; ++i) groups[i].options().set_lr(rates[i]);
  if (o.update && !fusedSgdStep(optimizer)) optimizer.step();
  return out;
}

void saveOptimizer(torch::optim::Optimizer& optimizer, const std::string& path) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  archive.save_to(path);
}

void loadOptimizer(torch::optim::Optimizer& optimizer, const std::string& path, const torch::Device& device) {
  torch::serialize::InputArchive archive;
  archive.load_from(path, device);
  optimizer.load(archive);
}

}  // namespace vggn
