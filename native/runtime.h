// Process-wide LibTorch settings: intra-op threads, device parsing, autocast.
#pragma once

#include <torch/torch.h>

#include <string>

namespace vggn {

/** Intra-op threads every worker uses (Debian's torch starts at 1). */
void setDesiredThreads(int n);
int desiredThreads();
/** Applies the desired thread count to the calling (libuv pool) thread. */
void applyThreadSettings();

/** "cpu", "cuda", "cuda:N"; throws with install advice when CUDA is absent. */
torch::Device parseDevice(const std::string& spec);

/** Enables autocast for one call on the current thread; restores on exit. */
class AutocastScope {
 public:
  AutocastScope(const std::string& precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool gpu_ = false, cpu_ = false;
  bool prevGpu_ = false, prevCpu_ = false;
};

}  // namespace vggn
