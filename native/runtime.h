// Process-wide LibTorch settings: intra-op threads, the random generator's
// lock, devices (parsing, host <-> device copies), autocast.
#pragma once

#include <torch/torch.h>

#include <mutex>
#include <string>

namespace vggn {

/** Intra-op threads every worker uses (Debian's torch starts at 1). */
void setDesiredThreads(int n);
int desiredThreads();
/** Applies the desired thread count to the calling (libuv pool) thread. */
void applyThreadSettings();

/** LibTorch's default generator is process-wide: hold this to seed it and draw from it in one go. */
std::mutex& generatorMutex();

/** "cpu", "cuda", "cuda:N"; throws with install advice when CUDA is absent. */
torch::Device parseDevice(const std::string& spec);

/** A host tensor on `device`: to a GPU through pinned memory (an asynchronous copy); itself on the CPU. */
torch::Tensor toDevice(const torch::Tensor& host, const torch::Device& device);
/** Detached, on the CPU, contiguous: float32 for floating point, int64 otherwise (what JS typed arrays hold). */
torch::Tensor toHost(const torch::Tensor& t);

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
