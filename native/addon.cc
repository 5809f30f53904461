// Module entry: registers the Model class and the runtime functions only.
// No environment variable is read here or anywhere in native/: configure()
// receives the settings src/settings.ts parsed.
#include <napi.h>
#include <torch/torch.h>
#include <array>
#include <utility>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "baton.h"
#include "blas_threads.h"
#include "cpu_features.h"
#include "distributed.h"
#include "gemv.h"
#include "host_allocator.h"
#include "model_wrap.h"
#include "onednn_trunk.h"
#include "promise_worker.h"
#include "runtime.h"

namespace vggn {

// Each enum setting's names as src/settings.ts spells them: one table, read both ways.
template <typename E>
using NameTable = std::array<std::pair<E, const char*>, 3>;
static constexpr NameTable<GemvCap> kGemvNames{{{GemvCap::kAuto, "auto"}, {GemvCap::kAvx2, "avx2"}, {GemvCap::kOff, "off"}}};
static constexpr NameTable<ConvAlgo> kConvAlgoNames{
    {{ConvAlgo::kAuto, "auto"}, {ConvAlgo::kDirect, "direct"}, {ConvAlgo::kWinograd, "winograd"}}};

template <typename E>
static const char* nameOf(const NameTable<E>& table, E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return table[0].second;
}

template <typename E>
static E choiceOf(const Baton& o, const char* key, const NameTable<E>& table, const char* expected) {
  std::string given = o.string(key);
  for (const auto& [v, name] : table)
    if (given == name) return v;
  o.fail(key, expected);
}

/** The settings in force, as src/binding.ts's NativeSettings. */
static Napi::Object settingsObject(Napi::Env env) {
  Settings s = currentSettings();
  auto o = Napi::Object::New(env);
  o.Set("onednn", s.onednn);
  o.Set("tf32", s.tf32);
  o.Set("hostCacheMb", static_cast<double>(s.hostCacheMb));
  o.Set("workerNice", s.workerNice);
  o.Set("gemv", nameOf(kGemvNames, s.gemv));
  o.Set("convAlgo", nameOf(kConvAlgoNames, s.convAlgo));
  return o;
}

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
  hostCache.Set("evictions", static_cast<double>(cacheStats.evictions));
  o.Set("hostCache", hostCache);
  auto dnn = oneDnnInfo();
  auto onednn = Napi::Object::New(env);
  onednn.Set("built", dnn.built);
  onednn.Set("version", dnn.version);
  onednn.Set("isa", dnn.isa);
  onednn.Set("bf16", dnn.bf16);
  onednn.Set("int8", dnn.int8);
  onednn.Set("enabled", dnn.built && oneDnnSetting());
  o.Set("onednn", onednn);
  const CpuFeatures& cpu = cpuFeatures();
  auto features = Napi::Object::New(env);
  features.Set("avx2", cpu.avx2);
  features.Set("avx512f", cpu.avx512f);
  features.Set("avx512Vnni", cpu.avx512Vnni);
  features.Set("avx512Bf16", cpu.avx512Bf16);
  features.Set("amxBf16", cpu.amxBf16);
  features.Set("amxInt8", cpu.amxInt8);
  o.Set("cpu", features);
  o.Set("gemvKernel", gemvKernel());
  o.Set("settings", settingsObject(env));
  return o;
}

// configure(settings): src/settings.ts's values (the environment, parsed
// and checked there), applied once per process by the binding loader before
// any model exists; a later call (a worker thread's load) changes nothing.
// Returns the settings in force.
static Napi::Value Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Baton o(info[0], "configure: settings");
  Settings s;
  s.onednn = o.boolean("onednn");
  s.tf32 = o.boolean("tf32");
  int64_t mb = o.integer("hostCacheMb");
  if (mb < 0 || mb > (int64_t(1) << 30)) o.fail("hostCacheMb", "an integer in 0..2^30");
  s.hostCacheMb = static_cast<uint64_t>(mb);
  int64_t nice = o.integer("workerNice");
  if (nice < 0 || nice > 19) o.fail("workerNice", "an integer in 0..19");
  s.workerNice = static_cast<int>(nice);
  s.gemv = choiceOf(o, "gemv", kGemvNames, "'auto', 'avx2' or 'off'");
  s.convAlgo = choiceOf(o, "convAlgo", kConvAlgoNames, "'auto', 'direct' or 'winograd'");
  guarded(env, [&] { return configure(s); });
  return settingsObject(env);
}

// setHostCacheLimit(mb): the caching CPU allocator's cap from now on; 0 frees
// what it holds and stops caching.
static Napi::Value SetHostCacheLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t mb = toInteger(info[0], "setHostCacheLimit: mb");
  if (mb < 0 || mb > (int64_t(1) << 30)) invalidArgument(env, "setHostCacheLimit: mb", "an integer in 0..2^30");
  setHostCacheLimit(static_cast<uint64_t>(mb) << 20);
  return env.Undefined();
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
  // Before LibTorch allocates anything of ours (once per process), at the
  // default cap until configure() sets the hostCacheMb setting.
  installHostAllocator();
  // Once per process, before any of our BLAS calls (Init runs again per worker_thread).
  static int blasCopies = restartBlasThreadsLazily();
  (void)blasCopies;
  setDesiredThreads(desiredThreads());
  exports.Set("Model", ModelWrap::Define(env));
  exports.Set("runtime", Napi::Function::New(env, Runtime));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("setHostCacheLimit", Napi::Function::New(env, SetHostCacheLimit));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  return exports;
}

}  // namespace vggn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return vggn::Init(env, exports); }

NODE_API_MODULE(vgg_native, InitAddon)
