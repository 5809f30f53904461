#include "runtime.h"

#include "blas_threads.h"
#include "host_allocator.h"

#include "torch_compat.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <atomic>
#include <thread>

namespace vggn {

namespace {
// Atomics: read on every forward (oneDNN, gemv) and primitive build (algorithm).
std::atomic<bool> gOneDnn{true};
std::atomic<bool> gTf32{true};
std::atomic<int> gWorkerNice{10};
std::atomic<GemvCap> gGemv{GemvCap::kAuto};
std::atomic<ConvAlgo> gConvAlgo{ConvAlgo::kAuto};
}  // namespace

bool configure(const Settings& s) {
  static std::mutex mu;
  static bool configured = false;
  std::lock_guard<std::mutex> lock(mu);
  if (configured) return false;
  configured = true;
  gOneDnn.store(s.onednn);
  gTf32.store(s.tf32);
  gWorkerNice.store(s.workerNice);
  gGemv.store(s.gemv);
  gConvAlgo.store(s.convAlgo);
  if (!s.tf32) disableTf32();
  setHostCacheLimit(s.hostCacheMb << 20);
  return true;
}

Settings currentSettings() {
  Settings s;
  s.onednn = gOneDnn.load();
  s.tf32 = gTf32.load();
  s.hostCacheMb = hostCacheStats().limitBytes >> 20;
  s.workerNice = gWorkerNice.load();
  s.gemv = gGemv.load();
  s.convAlgo = gConvAlgo.load();
  return s;
}

bool oneDnnSetting() { return gOneDnn.load(std::memory_order_relaxed); }
GemvCap gemvCap() { return gGemv.load(std::memory_order_relaxed); }
ConvAlgo convAlgoSetting() { return gConvAlgo.load(std::memory_order_relaxed); }

static std::atomic<int> gThreads{0};

void setDesiredThreads(int n) {
  TORCH_CHECK(n > 0, "threads must be positive, got ", n);
  gThreads.store(n);
  at::set_num_threads(n);
}

int desiredThreads() {
  int n = gThreads.load();
  if (n > 0) return n;
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

// Pool threads (and the OpenMP threads they start, which inherit it) run at a
// lower priority than the JS thread, so kernels that fill every core still
// leave the event loop a core when it needs one. Linux niceness is per thread;
// the workerNice setting (VGG_NATIVE_WORKER_NICE) is how much, 0 turns it off.
static void lowerWorkerPriority() {
  thread_local bool done = false;
  if (done) return;
  done = true;
#ifdef __linux__
  int nice = gWorkerNice.load();
  if (nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice);
#endif
}

// OpenMP's thread count is per calling thread: every pool thread that runs
// LibTorch work sets it before the first kernel. Through omp_set_num_threads,
// not at::set_num_threads (nor at::init_num_threads, which calls it): in
// LibTorch 1.13 that also destroys and recreates caffe2's pthreadpool, whose
// new worker spins about a million iterations before it sleeps, taking one of
// the cores a forward is using (per call that was ~30% of a batch-1 VGG-11).
void applyThreadSettings() {
  lowerWorkerPriority();
  int n = desiredThreads();
#ifdef _OPENMP
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
#else
  if (at::get_num_threads() != n) at::set_num_threads(n);
#endif
  applyBlasThreads(n);  // BLAS calls parallelise on their own threads: same count
}

std::mutex& generatorMutex() {
  static std::mutex mu;
  return mu;
}

torch::Device parseDevice(const std::string& spec) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(spec);
  } catch (const c10::Error&) {
    TORCH_CHECK(false, "Expected 'cpu', 'cuda' or 'cuda:N' for device but received '", spec, "'");
  }
  TORCH_CHECK(device.is_cpu() || device.is_cuda(), "Expected 'cpu', 'cuda' or 'cuda:N' for device but received '", spec, "'");
  if (device.is_cuda()) {
    TORCH_CHECK(torch::cuda::is_available(), "device '", spec,
                "' was asked for, but this LibTorch has no CUDA (or no GPU is visible). "
                "Install a CUDA build of LibTorch from pytorch.org, set LIBTORCH to its folder and run "
                "`npm rebuild vgg-native`; or use device 'cpu'.");
    auto count = static_cast<int64_t>(torch::cuda::device_count());
    TORCH_CHECK(!device.has_index() || device.index() < count, "device '", spec, "' does not exist: ", count, " CUDA device(s) visible");
  }
  return device;
}

torch::Tensor toDevice(const torch::Tensor& host, const torch::Device& device) {
  if (device.is_cpu()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

torch::Tensor toHost(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, t.is_floating_point() ? torch::kFloat32 : torch::kInt64).contiguous();
}

AutocastScope::AutocastScope(const std::string& precision, const torch::Device& device) {
  if (precision == "fp32" || precision == "int8" || precision.empty()) return;  // int8: the trunk's own (onednn_trunk.h)
  TORCH_CHECK(precision == "fp16" || precision == "bf16", "Expected 'fp32', 'fp16' or 'bf16' for precision but received '", precision, "'");
  if (device.is_cuda()) {
    prevGpu_ = compat::autocastEnabled(c10::DeviceType::CUDA);
    compat::setAutocastDtype(c10::DeviceType::CUDA, precision == "fp16" ? at::kHalf : at::kBFloat16);
    compat::setAutocastEnabled(c10::DeviceType::CUDA, true);
    gpu_ = true;
  } else {
    TORCH_CHECK(precision == "bf16", "precision 'fp16' needs a CUDA device; on the CPU use 'bf16' or 'fp32'");
    prevCpu_ = compat::autocastEnabled(c10::DeviceType::CPU);
    compat::setAutocastDtype(c10::DeviceType::CPU, at::kBFloat16);
    compat::setAutocastEnabled(c10::DeviceType::CPU, true);
    cpu_ = true;
  }
}

AutocastScope::~AutocastScope() {
  if (gpu_) compat::setAutocastEnabled(c10::DeviceType::CUDA, prevGpu_);
  if (cpu_) compat::setAutocastEnabled(c10::DeviceType::CPU, prevCpu_);
  if (gpu_ || cpu_) at::autocast::clear_cache();
}

}  // namespace vggn
