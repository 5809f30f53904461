#include "vgg_model.h"

#include "gemv.h"

#include "torch_compat.h"

#include <algorithm>
#include <stdexcept>

namespace vggn {

namespace F = torch::nn::functional;

const std::vector<int64_t>& stageBlocks(int depth) {
  static const std::map<int, std::vector<int64_t>> table = {
      {11, {1, 1, 2, 2, 2}}, {13, {2, 2, 2, 2, 2}}, {16, {2, 2, 3, 3, 3}}, {19, {2, 2, 4, 4, 4}}};
  auto it = table.find(depth);
  TORCH_CHECK(it != table.end(), "VGG depth must be 11, 13, 16 or 19, got ", depth);
  return it->second;
}

static const int64_t kStageWidths[kNumStages] = {64, 128, 256, 512, 512};

bool isFeatureName(const std::string& name) {
  if (std::find(std::begin(kStageNames), std::end(kStageNames), name) != std::end(kStageNames)) return true;
  static const std::set<std::string> others = {"pool5", "fc6", "fc7", "logits"};
  return others.count(name) > 0;
}

ConvModuleImpl::ConvModuleImpl(int64_t in, int64_t out, int64_t dilation, bool batchNorm) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(dilation).dilation(dilation).bias(true)));
  if (batchNorm) {
    bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(1e-5).momentum(0.1)));
  }
}

torch::Tensor ConvModuleImpl::forward(torch::Tensor x) {
  x = conv(x);
  if (bn) x = bn(x);
  return torch::relu_(x);
}

VggImpl::VggImpl(const VggConfig& config) : config_(config) {
  const auto& blocks = stageBlocks(config.depth);
  TORCH_CHECK(config.dilations.size() == 5, "dilations needs 5 values, got ", config.dilations.size());
  if (config_.outIndices.empty()) config_.outIndices = {config.numClasses > 0 ? 5 : 4};
  features_ = torch::nn::ModuleList();
  int64_t in = 3;
  size_t index = 0;
  for (size_t s = 0; s < blocks.size(); ++s) {
    size_t begin = index;
    for (int64_t b = 0; b < blocks[s]; ++b, ++index) {
      features_->push_back(ConvModule(in, kStageWidths[s], config.dilations[s], config.batchNorm));
      in = kStageWidths[s];
    }
    bool lastPool = s + 1 < blocks.size() || config.withLastPool;
    if (lastPool) {
      features_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2).ceil_mode(config.ceilMode)));
      ++index;
    }
    stageRanges_.emplace_back(begin, index);
  }
  register_module("features", features_);
  if (config.numClasses > 0) {
    classifier_ = torch::nn::Sequential(torch::nn::Linear(512 * 7 * 7, 4096), torch::nn::ReLU(torch::nn::ReLUOptions(true)),
                                        torch::nn::Dropout(config.dropout), torch::nn::Linear(4096, 4096),
                                        torch::nn::ReLU(torch::nn::ReLUOptions(true)), torch::nn::Dropout(config.dropout),
                                        torch::nn::Linear(4096, config.numClasses));
    register_module("classifier", classifier_);
  }
  if (config.initWeights) initWeights();
  train(true);
}

// mmcls init_cfg: Kaiming (fan_out, relu) for convs, 1/0 for BN, N(0, 0.01) for Linear.
void VggImpl::initWeights() {
  torch::NoGradGuard guard;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
      torch::nn::init::zeros_(c->bias);
    } else if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) {
      torch::nn::init::ones_(b->weight);
      torch::nn::init::zeros_(b->bias);
    } else if (auto* l = m->as<torch::nn::LinearImpl>()) {
      torch::nn::init::normal_(l->weight, 0, 0.01);
      torch::nn::init::zeros_(l->bias);
    }
  }
}

void VggImpl::freezeStages() {
  for (int s = 0; s < config_.frozenStages && s < static_cast<int>(stageRanges_.size()); ++s) {
    for (size_t j = stageRanges_[s].first; j < stageRanges_[s].second; ++j) {
      auto m = features_[j];
      m->eval();
      for (auto& p : m->parameters()) p.set_requires_grad(false);
    }
  }
}

void VggImpl::train(bool on) {
  torch::nn::Module::train(on);
  freezeStages();
  if (on && config_.normEval) {
    for (auto& m : modules(false)) {
      if (m->as<torch::nn::BatchNorm2dImpl>()) m->eval();
    }
  }
}

torch::Tensor VggImpl::runStage(size_t stage, torch::Tensor x) {
  for (size_t j = stageRanges_[stage].first; j < stageRanges_[stage].second; ++j) {
    auto m = features_[j];
    if (auto* c = m->as<ConvModuleImpl>()) {
      x = c->forward(x);
    } else if (auto* p = m->as<torch::nn::MaxPool2dImpl>()) {
      x = p->forward(x);
    }
  }
  return x;
}

// Adaptive pooling to 7x7 is the identity at 224x224 (mmcls has none), and
// lets other input sizes reach the classifier.
torch::Tensor VggImpl::flattenForClassifier(torch::Tensor x) {
  if (x.size(2) != 7 || x.size(3) != 7) x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({7, 7}));
  return x.flatten(1);
}

namespace {
/**
 * Inference on 1-16 images: the classifier streams its 123 M weights once per
 * call whatever the batch, so it runs at memory speed (gemv.cc) instead of
 * through LibTorch's GEMM, which reached about a sixth of it with n = 1
 * (fc6 of VGG: 5.5 ms against 33 ms on this project's machine).
 */
torch::Tensor linear(torch::nn::LinearImpl& l, const torch::Tensor& h, TrunkRunner* trunk) {
  bool inference = !torch::GradMode::is_enabled() && !compat::autocastEnabled(c10::DeviceType::CPU);
  if (inference) {
    auto y = trunk ? trunk->linear(l, h) : torch::Tensor();
    if (y.defined()) return y;
    y = smallBatchLinear(h, l.weight, l.bias);
    if (y.defined()) return y;
  }
  return l.forward(h);
}
}  // namespace

torch::Tensor VggImpl::classifierLayer(size_t i, torch::Tensor h, TrunkRunner* trunk) {
  auto m = classifier_[i];
  if (auto* l = m->as<torch::nn::LinearImpl>()) return linear(*l, h, trunk);
  if (auto* r = m->as<torch::nn::ReLUImpl>()) return r->forward(h);
  if (auto* d = m->as<torch::nn::DropoutImpl>()) return d->forward(h);
  TORCH_CHECK(false, "unexpected layer classifier.", i);
}

torch::Tensor VggImpl::runClassifier(torch::Tensor h, TrunkRunner* trunk) {
  for (size_t i = 0; i < classifier_->size(); ++i) h = classifierLayer(i, h, trunk);
  return h;
}

std::vector<TrunkLayer> VggImpl::trunkLayers() {
  std::vector<TrunkLayer> layers;
  for (size_t s = 0; s < stageRanges_.size(); ++s) {
    for (size_t j = stageRanges_[s].first; j < stageRanges_[s].second; ++j) {
      auto* c = features_[j]->as<ConvModuleImpl>();
      layers.push_back({s, c, config_.dilations[s]});
    }
  }
  return layers;
}

std::vector<torch::Tensor> VggImpl::runTrunk(const torch::Tensor& input, size_t deepest, const std::vector<bool>& want,
                                             TrunkRunner* trunk) {
  if (trunk) return trunk->run(*this, input, deepest, want);
  std::vector<torch::Tensor> outs(deepest + 1);
  torch::Tensor x = input;
  for (size_t s = 0; s <= deepest; ++s) {
    x = runStage(s, x);
    if (want[s] || s == deepest) outs[s] = x;
  }
  return outs;
}

std::vector<std::pair<std::string, torch::Tensor>> VggImpl::forwardStages(torch::Tensor x, TrunkRunner* trunk) {
  std::vector<std::pair<std::string, torch::Tensor>> outs;
  const auto& idx = config_.outIndices;
  std::vector<bool> want(stageRanges_.size());
  for (size_t s = 0; s < want.size(); ++s) want[s] = std::find(idx.begin(), idx.end(), static_cast<int64_t>(s)) != idx.end();
  auto stages = runTrunk(x, stageRanges_.size() - 1, want, trunk);
  for (size_t s = 0; s < stages.size(); ++s)
    if (want[s]) outs.emplace_back(kStageNames[s], stages[s]);
  if (classifier_) outs.emplace_back("logits", runClassifier(flattenForClassifier(stages.back()), trunk));
  return outs;
}

torch::Tensor VggImpl::forward(torch::Tensor x, TrunkRunner* trunk) {
  x = runTrunk(x, stageRanges_.size() - 1, std::vector<bool>(stageRanges_.size()), trunk).back();
  if (!classifier_) return x;
  return runClassifier(flattenForClassifier(x), trunk);
}

std::map<std::string, torch::Tensor> VggImpl::forwardNamed(torch::Tensor x, const std::set<std::string>& wanted, TrunkRunner* trunk) {
  std::map<std::string, torch::Tensor> out;
  bool needHead = wanted.count("fc6") || wanted.count("fc7") || wanted.count("logits");
  TORCH_CHECK(!needHead || classifier_, "this model has no classifier (numClasses is 0): fc6, fc7 and logits are not available");
  size_t deepest = 0;
  for (size_t s = 0; s < kNumStages; ++s)
    if (wanted.count(kStageNames[s])) deepest = s;
  if (needHead || wanted.count("pool5")) deepest = stageRanges_.size() - 1;
  std::vector<bool> want(deepest + 1);
  for (size_t s = 0; s <= deepest; ++s) want[s] = wanted.count(kStageNames[s]) > 0;
  auto stages = runTrunk(x, deepest, want, trunk);
  for (size_t s = 0; s <= deepest; ++s)
    if (want[s]) out[kStageNames[s]] = stages[s];
  x = stages.back();
  if (wanted.count("pool5")) out["pool5"] = x.mean({2, 3});
  if (!needHead) return out;
  auto h = flattenForClassifier(x);
  // classifier: 0 Linear, 1 ReLU, 2 Dropout, 3 Linear, 4 ReLU, 5 Dropout, 6 Linear
  h = classifierLayer(1, classifierLayer(0, h, trunk));
  if (wanted.count("fc6")) out["fc6"] = h;  // later layers make new tensors: no copy needed
  h = classifierLayer(4, classifierLayer(3, classifierLayer(2, h), trunk));
  if (wanted.count("fc7")) out["fc7"] = h;
  if (wanted.count("logits")) out["logits"] = classifierLayer(6, classifierLayer(5, h), trunk);
  return out;
}

void VggImpl::composeClassifierInput(const torch::Tensor& scale, const torch::Tensor& shift) {
  TORCH_CHECK(classifier_, "this model has no classifier (numClasses is 0)");
  auto* fc6 = classifier_[0]->as<torch::nn::LinearImpl>();
  TORCH_CHECK(fc6 != nullptr, "classifier[0] is not a Linear");
  int64_t channels = scale.numel();
  TORCH_CHECK(shift.numel() == channels && channels > 0 && fc6->weight.size(1) % channels == 0, "composeClassifierInput: ", channels,
              " scales/shifts do not divide fc6's ", fc6->weight.size(1), " inputs");
  torch::NoGradGuard guard;
  auto w = fc6->weight.view({fc6->weight.size(0), channels, -1});
  auto opts = w.options();
  // The bias first: it takes the weights as they were.
  fc6->bias.add_((w * shift.to(opts).view({1, channels, 1})).sum({1, 2}));
  w.mul_(scale.to(opts).view({1, channels, 1}));
}

void VggImpl::resetHead(int64_t numClasses) {
  TORCH_CHECK(classifier_, "this model has no classifier to replace (it was built with numClasses 0)");
  TORCH_CHECK(numClasses > 0, "numClasses must be positive, got ", numClasses);
  auto params = classifier_->parameters();
  auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  torch::nn::Linear head(4096, numClasses);
  {
    torch::NoGradGuard guard;
    torch::nn::init::normal_(head->weight, 0, 0.01);
    torch::nn::init::zeros_(head->bias);
  }
  head->to(device);
  // Sequential has no item replacement: rebuild it around the new head.
  torch::nn::Sequential rebuilt;
  for (auto it = classifier_->begin(); it + 1 != classifier_->end(); ++it) rebuilt->push_back(*it);
  rebuilt->push_back(head);
  classifier_ = replace_module("classifier", rebuilt);
  config_.numClasses = numClasses;
  rebuilt->train(is_training());
}

std::vector<torch::Tensor> VggImpl::headParameters() {
  if (!classifier_) return {};
  return classifier_[classifier_->size() - 1]->parameters();
}

std::vector<torch::Tensor> VggImpl::backboneParameters() {
  std::vector<torch::Tensor> head = headParameters(), rest;
  for (auto& p : parameters()) {
    bool isHead = std::any_of(head.begin(), head.end(), [&](const torch::Tensor& h) { return h.is_same(p); });
    if (!isHead) rest.push_back(p);
  }
  return rest;
}

}  // namespace vggn
