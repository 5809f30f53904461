// VGG (Simonyan & Zisserman) in LibTorch's C++ frontend, laid out exactly as
// mmcls 0.x builds it so registered names reproduce its state_dict keys:
//   features.{i}.conv / features.{i}.bn   (one ConvModule per conv)
//   features.{j}                          (MaxPool2d closing each stage)
//   classifier.{0,3,6}                    (Linear layers)
#pragma once

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vggn {

/** Tensors by name, in order (forward outputs, state_dict entries). */
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/** VGG's five stages; stage s (0-based) is called kStageNames[s] wherever a name is asked for or given (outputs, forwardNamed, explain). */
constexpr size_t kNumStages = 5;
inline constexpr const char* kStageNames[kNumStages] = {"stage1", "stage2", "stage3", "stage4", "stage5"};

// Every field is set by the caller (model_wrap.cc copies what TypeScript resolved); no defaults here.
struct VggConfig {
  int depth;  // 11, 13, 16, 19
  bool batchNorm;
  int64_t numClasses;               // 0 = no classifier
  std::vector<int64_t> outIndices;  // stage indices 0..4, 5 = logits; empty = mmcls's own: 5, or 4 without classifier
  int frozenStages;                 // -1 = none
  bool normEval;
  bool ceilMode;
  bool withLastPool;
  std::vector<int64_t> dilations;  // one per stage
  double dropout;
  bool initWeights;  // false when a checkpoint will overwrite every tensor
};

/** Per-depth convolutions per stage (mmcls VGG.arch_settings). */
const std::vector<int64_t>& stageBlocks(int depth);

/** conv (bias always on) -> [bn] -> ReLU, as mmcv's ConvModule. */
struct ConvModuleImpl : torch::nn::Module {
  ConvModuleImpl(int64_t in, int64_t out, int64_t dilation, bool batchNorm);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvModule);

/** The names forwardNamed() understands. */
bool isFeatureName(const std::string& name);

class VggImpl;

/** One layer of the convolutional trunk, in order: a ConvModule or a stage's closing MaxPool. */
struct TrunkLayer {
  size_t stage;
  ConvModuleImpl* conv;  // nullptr for the MaxPool
  int64_t dilation;
};

/**
 * Runs the convolutional trunk by other means than the modules' own forward
 * (native/onednn_trunk.cc: prepacked oneDNN primitives). Returns the outputs of
 * stages 0..deepest as dense float32 tensors: those marked in `want` and the
 * last; the others may be undefined. Inference only.
 */
struct TrunkRunner {
  virtual ~TrunkRunner() = default;
  virtual std::vector<torch::Tensor> run(VggImpl& model, const torch::Tensor& x, size_t deepest, const std::vector<bool>& want) = 0;
  /** The classifier's Linear `l` on `h` ([N, in] float32) by this runner's means, or undefined for LibTorch's own. */
  virtual torch::Tensor linear(torch::nn::LinearImpl& /*l*/, const torch::Tensor& /*h*/) { return {}; }
};

class VggImpl : public torch::nn::Module {
 public:
  explicit VggImpl(const VggConfig& config);

  /** Outputs of config.outIndices ("stage1".."stage5", "logits"), in order. `trunk`: see TrunkRunner. */
  std::vector<std::pair<std::string, torch::Tensor>> forwardStages(torch::Tensor x, TrunkRunner* trunk = nullptr);
  /** Logits, or the last stage when there is no classifier. */
  torch::Tensor forward(torch::Tensor x, TrunkRunner* trunk = nullptr);
  /** Any of stage1..stage5, pool5, fc6, fc7, logits; runs only as deep as needed. */
  std::map<std::string, torch::Tensor> forwardNamed(torch::Tensor x, const std::set<std::string>& wanted, TrunkRunner* trunk = nullptr);
  /** The classifier on the trunk's last output (adaptive 7x7 pooling when needed, flatten): logits. */
  torch::Tensor classifierOn(torch::Tensor trunkOut, TrunkRunner* trunk = nullptr) {
    return runClassifier(flattenForClassifier(std::move(trunkOut)), trunk);
  }
  /** The trunk's layers in order, for a TrunkRunner. */
  std::vector<TrunkLayer> trunkLayers();
  size_t stageCount() const { return stageRanges_.size(); }

  /** mmcls semantics: frozen stages stay in eval with no grad; normEval keeps BN in eval. */
  void train(bool on = true) override;
  /**
   * Rewrites fc6 so that it computes on x * scale + shift what it computed on x,
   * where scale and shift ([C] float32, C = the trunk's channel count) act per
   * channel of the trunk's output: W[:, c, p] *= scale[c], b += sum W[:, c, p] * shift[c].
   * Per-channel maps commute with the adaptive 7x7 average pooling, so the model's
   * function on trunk outputs x becomes fc6(x * scale + shift). In place (the
   * optimizer's references stay valid); used to train on standardised features.
   */
  void composeClassifierInput(const torch::Tensor& scale, const torch::Tensor& shift);
  /** Replaces the last Linear with a freshly initialised one (0 removes the classifier). */
  void resetHead(int64_t numClasses);
  /** Parameters of the classifier's last Linear (the head) vs. the rest. */
  std::vector<torch::Tensor> headParameters();
  std::vector<torch::Tensor> backboneParameters();

  const VggConfig& config() const { return config_; }

 private:
  void initWeights();
  void freezeStages();
  torch::Tensor runStage(size_t stage, torch::Tensor x);
  std::vector<torch::Tensor> runTrunk(const torch::Tensor& x, size_t deepest, const std::vector<bool>& want, TrunkRunner* trunk);
  torch::Tensor flattenForClassifier(torch::Tensor x);
  /** classifier[i] applied to h (Linear, ReLU or Dropout); a Linear by `trunk` when it takes it. */
  torch::Tensor classifierLayer(size_t i, torch::Tensor h, TrunkRunner* trunk = nullptr);
  /** The whole classifier, layer by layer. */
  torch::Tensor runClassifier(torch::Tensor h, TrunkRunner* trunk = nullptr);

  VggConfig config_;
  torch::nn::ModuleList features_{nullptr};
  torch::nn::Sequential classifier_{nullptr};
  // [begin, end) indices into features_ of each stage (mmcls range_sub_modules)
  std::vector<std::pair<size_t, size_t>> stageRanges_;
};
TORCH_MODULE(Vgg);

}  // namespace vggn
