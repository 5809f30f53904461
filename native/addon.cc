// Module entry: registers the Model class and the runtime functions only.
#include <napi.h>
#include <torch/torch.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "baton.h"
#include "blas_threads.h"
#include "distributed.h"
#include "gemv.h"
#include "host_allocator.h"
#include "model_wrap.h"
#include "onednn_trunk.h"
#include "promise_worker.h"
#include "runtime.h"

namespace vggn {

static Napi::Value Runtime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
  bool cuda = torch::cuda::is_available();
  o.Set("cuda", cuda);
  o.Set("cudaDevices", static_cast<double>(cuda ? torch::cuda::device_count() : 0));
  o.Set("cudnn", cuda && torch::cuda::cudnn_is_available());
  o.Set("threads", desiredThreads());
  o.Set("interopThreads", at::get_num_interop_threads());
  o.Set("napiVersion", NAPI_VERSION);
  o.Set("distributed", Distributed::available());
  o.Set("parallelInfo", at::get_parallel_info());
  auto cacheStats = hostCacheStats();
  auto hostCache = Napi::Object::New(env);
  hostCache.Set("cachedBytes", static_cast<double>(cacheStats.cachedBytes));
  hostCache.Set("limitBytes", static_cast<double>(cacheStats.limitBytes));
  hostCache.Set("hits", static_cast<double>(cacheStats.hits));
  hostCache.Set("misses", static_cast<double>(cacheStats.misses));
  o.Set("hostCache", hostCache);
  auto dnn = oneDnnInfo();
  auto onednn = Napi::Object::New(env);
  onednn.Set("built", dnn.built);
  onednn.Set("version", dnn.version);
  onednn.Set("isa", dnn.isa);
  onednn.Set("bf16", dnn.bf16);
  const char* off = std::getenv("VGG_NATIVE_ONEDNN");
  onednn.Set("enabled", dnn.built && !(off && std::string(off) == "0"));
  o.Set("onednn", onednn);
  o.Set("gemvKernel", gemvKernel());
  return o;
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  guarded(env, [&] {
    setDesiredThreads(static_cast<int>(toInteger(info[0], "setThreads: n")));
    return 0;
  });
  return env.Undefined();
}

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(static_cast<uint64_t>(toInteger(info[0], "manualSeed: seed")));
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef __GLIBC__
  // Tensors of 1 MiB and up always get their own mapping, returned to the OS
  // on free. glibc otherwise raises this threshold after the first large free
  // and serves later tensors from per-thread arenas that keep freed memory:
  // models built on pool threads then made RSS creep over create/dispose cycles.
  static bool tuned = [] { return mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1; }();
  (void)tuned;
#endif
  // Before LibTorch allocates anything of ours (once per process).
  installHostAllocator();
  // Once per process, before any of our BLAS calls (Init runs again per worker_thread).
  static int blasCopies = restartBlasThreadsLazily();
  (void)blasCopies;
  setDesiredThreads(desiredThreads());
  exports.Set("Model", ModelWrap::Define(env));
  exports.Set("runtime", Napi::Function::New(env, Runtime));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  return exports;
}

}  // namespace vggn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return vggn::Init(env, exports); }

NODE_API_MODULE(vgg_native, InitAddon)
