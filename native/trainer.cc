#include "trainer.h"

#include <cmath>
#include <mutex>
#include <vector>

#include "distributed.h"
#include "runtime.h"

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
  optimizer.zero_grad();
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
  if (o.update) optimizer.step();
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
