// Process-wide LibTorch settings: the package's settings (configure()),
// intra-op threads, the random generator's lock, devices (parsing, host <->
// device copies), autocast.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <mutex>
#include <string>

namespace vggn {

/** Cap on the kernel native/gemv.cc picks: the CPU's best, AVX2 at most, or LibTorch's linear. */
enum class GemvCap { kAuto, kAvx2, kOff };
/** Convolution algorithm of the oneDNN engine: timed per layer shape, or forced. */
enum class ConvAlgo { kAuto, kDirect, kWinograd };

// Native code reads no environment variable: src/settings.ts parses them and
// the binding loader hands the values over once, through configure(), before
// any model exists. Until then (and for an addon loaded without the package)
// these defaults apply.
struct Settings {
  bool onednn = true;           // the oneDNN engine for CPU inference
  bool tf32 = true;             // false: TF32 off for cuDNN and cuBLAS (true keeps LibTorch's defaults)
  uint64_t hostCacheMb = 2048;  // cap of the caching CPU allocator, MiB; 0 turns it off
  int workerNice = 10;          // niceness added to pool threads; 0 leaves them at the JS thread's
  GemvCap gemv = GemvCap::kAuto;
  ConvAlgo convAlgo = ConvAlgo::kAuto;
};

/**
 * Applies `s` process-wide on the first call only (the addon may be loaded
 * again by worker threads: the first load's settings stay). Returns whether
 * this call applied them.
 */
bool configure(const Settings& s);
/** The settings in force; hostCacheMb is the allocator's present cap (setHostCacheLimit may have changed it). */
Settings currentSettings();
/** Hot-path reads of single settings. */
bool oneDnnSetting();
GemvCap gemvCap();
ConvAlgo convAlgoSetting();
/** TF32 for cuDNN and cuBLAS off (tf32.cc); the only TF32 change the settings make. */
void disableTf32();

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
