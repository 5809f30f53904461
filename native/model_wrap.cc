#include "model_wrap.h"
#include "host_allocator.h"
#include "onednn_trunk.h"

#include <cmath>
#include <map>
#include <set>

#include "distributed.h"
#include "file_tensor.h"
#include "promise_worker.h"
#include "runtime.h"
#include "tensor_convert.h"

namespace vggn {

namespace F = torch::nn::functional;

namespace {

std::vector<int64_t> intList(const Napi::Object& o, const char* key, std::vector<int64_t> fallback) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return fallback;
  return toShape(o.Get(key), key);
}

double number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

bool boolean(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

std::string string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

// Parameters then buffers of each module, pre-order: PyTorch's state_dict order.
std::vector<std::pair<std::string, torch::Tensor>> orderedState(const Vgg& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model->named_modules("", /*include_self=*/true)) {
    std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

// To a GPU through pinned memory so the copy is asynchronous; a no-op on CPU.
torch::Tensor toDevice(const torch::Tensor& hostView, const torch::Device& device) {
  if (device.is_cpu()) return hostView;
  return hostView.pin_memory().to(device, /*non_blocking=*/true);
}

/** Per-channel (v - mean) / std applied to 8-bit pixels on the pool, not on the JS thread. */
struct PixelNormalize {
  bool enabled = false;
  std::vector<double> mean, std;
};

PixelNormalize parseNormalize(const Napi::Object& opts) {
  PixelNormalize p;
  Napi::Value v = opts.Get("normalize");
  if (!v.IsObject()) return p;
  auto o = v.As<Napi::Object>();
  auto list = [&](const char* key) {
    Napi::Value a = o.Get(key);
    if (!a.IsArray() || a.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(opts.Env(), std::string("Expected 3 numbers for normalize.") + key);
    std::vector<double> out;
    for (uint32_t i = 0; i < 3; ++i) out.push_back(a.As<Napi::Array>().Get(i).As<Napi::Number>().DoubleValue());
    return out;
  };
  p.enabled = true;
  p.mean = list("mean");
  p.std = list("std");
  return p;
}

/**
 * [N,H,W,3] uint8 -> [N,3,H,W] float32 whose memory is NHWC (channels_last).
 * The arithmetic is in double, as the TypeScript normalisation does, so both
 * give the same float32 values.
 */
torch::Tensor pixelsToInput(const torch::Tensor& nhwc, const PixelNormalize& p, const torch::Device& device) {
  auto dbl = torch::TensorOptions().dtype(torch::kFloat64);
  auto mean = torch::tensor(p.mean, dbl).to(device);
  auto stdv = torch::tensor(p.std, dbl).to(device);
  auto x = nhwc.to(device).to(torch::kFloat64).sub_(mean).div_(stdv).to(torch::kFloat32);
  return x.permute({0, 3, 1, 2});
}

/** VGG_NATIVE_ONEDNN=0 keeps inference on LibTorch's own kernels (for comparison). */
bool oneDnnEnabled() {
  static bool on = [] {
    const char* v = std::getenv("VGG_NATIVE_ONEDNN");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

torch::Tensor moveToHost(torch::Tensor t) {
  return t.detach().to(torch::kCPU, t.is_floating_point() ? torch::kFloat32 : torch::kInt64).contiguous();
}

}  // namespace

TrunkRunner* ModelState::trunkFor(const std::string& precision) {
  if (!device.is_cpu() || !oneDnnEnabled()) return nullptr;
  auto it = trunks.find(precision);
  if (it == trunks.end()) it = trunks.emplace(precision, makeOneDnnTrunk(precision)).first;
  return it->second.get();
}

namespace {

struct LoadEntry {
  std::string name;
  bool fromFile = false;
  FileTensorSource file;
  torch::Tensor array;  // wraps JS memory; kept alive by the worker
};

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelWrap::Forward>("forward"),
                         InstanceMethod<&ModelWrap::LoadStateDict>("loadStateDict"),
                         InstanceMethod<&ModelWrap::StateDict>("stateDict"),
                         InstanceMethod<&ModelWrap::StateShapes>("stateShapes"),
                         InstanceMethod<&ModelWrap::Summary>("summary"),
                         InstanceMethod<&ModelWrap::ResetHead>("resetHead"),
                         InstanceMethod<&ModelWrap::ConfigureOptimizer>("configureOptimizer"),
                         InstanceMethod<&ModelWrap::TrainStep>("trainStep"),
                         InstanceMethod<&ModelWrap::SaveOptimizer>("saveOptimizer"),
                         InstanceMethod<&ModelWrap::LoadOptimizer>("loadOptimizer"),
                         InstanceMethod<&ModelWrap::SetDistributed>("setDistributed"),
                         InstanceMethod<&ModelWrap::BroadcastWeights>("broadcastWeights"),
                         InstanceMethod<&ModelWrap::Device>("device"),
                         InstanceMethod<&ModelWrap::Dispose>("dispose"),
                         InstanceMethod<&ModelWrap::IsDisposed>("isDisposed"),
                         StaticMethod<&ModelWrap::CreateAsync>("create"),
                     });
  // create() resolves with an instance of this class: keep it for the worker's completion.
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(ctor)));
  return ctor;
}

namespace {

struct ModelSpec {
  VggConfig config;
  std::string device;
  bool seeded = false;
  uint64_t seed = 0;
};

ModelSpec parseSpec(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "Expected a config object for Model");
  auto o = v.As<Napi::Object>();
  ModelSpec m;
  VggConfig& c = m.config;
  c.depth = static_cast<int>(number(o, "depth", 16));
  c.batchNorm = boolean(o, "batchNorm", false);
  c.numClasses = static_cast<int64_t>(number(o, "numClasses", 1000));
  c.outIndices = intList(o, "outIndices", {});
  c.frozenStages = static_cast<int>(number(o, "frozenStages", -1));
  c.normEval = boolean(o, "normEval", false);
  c.ceilMode = boolean(o, "ceilMode", false);
  c.withLastPool = boolean(o, "withLastPool", true);
  c.dilations = intList(o, "dilations", {1, 1, 1, 1, 1});
  c.dropout = number(o, "dropout", 0.5);
  c.initWeights = boolean(o, "initWeights", true);
  m.device = string(o, "device", "cpu");
  m.seeded = o.Get("seed").IsNumber();
  m.seed = static_cast<uint64_t>(number(o, "seed", 0));
  return m;
}

std::mutex& rngMutex() {
  static std::mutex mu;  // LibTorch's default generator is process-wide
  return mu;
}

std::shared_ptr<ModelState> buildState(const ModelSpec& m) {
  auto device = parseDevice(m.device);
  // Fixed input sizes: let cuDNN pick the fastest convolution algorithms.
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  std::lock_guard<std::mutex> rng(rngMutex());
  if (m.seeded) torch::manual_seed(m.seed);
  auto st = std::make_shared<ModelState>(m.config, device);
  st->model->to(device);
  return st;
}

}  // namespace

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  Napi::Env env = info.Env();
  // Building allocates and initialises 130M+ parameters: only on the pool, through create().
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "Model is built with Model.create(config), not new Model()");
  state_ = *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
  accountMemory(env);
}

Napi::Value ModelWrap::CreateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto spec = parseSpec(info[0]);
  auto built = std::make_shared<std::shared_ptr<ModelState>>();
  return PromiseWorker::Run(
      env, [spec, built] { *built = buildState(spec); },
      [built](Napi::Env env) -> Napi::Value {
        auto ext = Napi::External<std::shared_ptr<ModelState>>::New(env, built.get());
        return env.GetInstanceData<Napi::FunctionReference>()->New({ext});
      });
}

// Tells V8 how much native memory this object holds, so its GC paces itself.
void ModelWrap::accountMemory(Napi::Env env) {
  int64_t bytes = 0;
  if (state_) {
    for (auto& p : state_->model->parameters()) bytes += p.numel() * p.element_size();
    for (auto& b : state_->model->buffers()) bytes += b.numel() * b.element_size();
  }
  adjustExternalMemory(env, bytes - externalBytes_);
  externalBytes_ = bytes;
}

ModelWrap::~ModelWrap() {
  // Collected without dispose(): give V8 its accounting back.
  adjustExternalMemory(Env(), -externalBytes_);
}

std::shared_ptr<ModelState> ModelWrap::state(const Napi::Env& env) const {
  if (!state_) throw Napi::Error::New(env, "this model was disposed; create a new one with vgg()");
  return state_;
}

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto shape = toShape(info[1], "shape");
  auto input = wrapTypedArray(info[0], shape, "data");
  auto opts = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  std::string precision = string(opts, "precision", "fp32");
  bool channelsLast = boolean(opts, "channelsLast", false);
  PixelNormalize normalize = parseNormalize(opts);
  if (normalize.enabled != (input.scalar_type() == torch::kUInt8) || (normalize.enabled && (shape.size() != 4 || shape[3] != 3)))
    throw Napi::TypeError::New(env, "Expected 8-bit pixels [N, H, W, 3] with normalize, or a Float32Array without it");
  // outputs: 'logits' | 'stages' | string[] of feature names
  std::string mode = "logits";
  std::set<std::string> wanted;
  std::vector<std::string> order;
  Napi::Value outputs = opts.Get("outputs");
  if (outputs.IsString()) {
    mode = outputs.As<Napi::String>().Utf8Value();
  } else if (outputs.IsArray()) {
    mode = "named";
    auto arr = outputs.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      std::string n = arr.Get(i).ToString().Utf8Value();
      if (!isFeatureName(n)) throw Napi::RangeError::New(env, "unknown feature layer '" + n + "'");
      wanted.insert(n);
      order.push_back(n);
    }
  }
  auto results = std::make_shared<std::vector<std::pair<std::string, torch::Tensor>>>();
  return PromiseWorker::Run(
      env,
      [st, input, shape, precision, channelsLast, normalize, mode, wanted, order, results] {
        std::lock_guard<std::mutex> lock(st->mu);
        c10::InferenceMode inference;
        bool wasTraining = st->model->is_training();
        if (wasTraining) st->model->eval();
        auto x = normalize.enabled ? pixelsToInput(input, normalize, st->device) : toDevice(input, st->device);
        // Normalised pixels are already channels_last in memory (a permuted NHWC view), which
        // both the oneDNN engine and LibTorch's kernels take as is: no NCHW copy of the batch.
        if (channelsLast) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        {
          AutocastScope autocast(precision, st->device);
          TrunkRunner* trunk = st->trunkFor(precision);
          if (mode == "logits") {
            results->emplace_back("logits", st->model->forward(x, trunk));
          } else if (mode == "stages") {
            *results = st->model->forwardStages(x, trunk);
          } else {
            auto named = st->model->forwardNamed(x, wanted, trunk);
            for (const auto& n : order) results->emplace_back(n, named.at(n));
          }
        }
        for (auto& r : *results) r.second = moveToHost(r.second);
        if (wasTraining) st->model->train(true);
      },
      [results](Napi::Env env) -> Napi::Value {
        auto arr = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); ++i) arr.Set(i, namedTensor(env, (*results)[i].first, (*results)[i].second));
        return arr;
      },
      {info[0]});
}

Napi::Value ModelWrap::LoadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "Expected an array of named tensors for entries");
  auto arr = info[0].As<Napi::Array>();
  auto entries = std::make_shared<std::vector<LoadEntry>>();
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    auto e = arr.Get(i).As<Napi::Object>();
    auto t = e.Get("tensor").As<Napi::Object>();
    LoadEntry le;
    le.name = e.Get("name").ToString().Utf8Value();
    std::string kind = string(t, "kind", "array");
    if (kind == "file") {
      le.fromFile = true;
      le.file.path = string(t, "path", "");
      le.file.byteOffset = static_cast<int64_t>(number(t, "byteOffset", -1));
      le.file.dtype = guarded(env, [&] { return parseStorageDType(string(t, "dtype", "float32")); });
      le.file.storageNumel = static_cast<int64_t>(number(t, "storageNumel", -1));
      le.file.storageOffset = static_cast<int64_t>(number(t, "storageOffset", 0));
      le.file.shape = toShape(t.Get("shape"), "shape");
      le.file.stride = toShape(t.Get("stride"), "stride");
      le.file.bigEndian = boolean(t, "bigEndian", false);
    } else {
      le.array = wrapTypedArray(t.Get("data"), toShape(t.Get("shape"), "shape"), le.name.c_str());
      keep.push_back(t.Get("data"));
    }
    entries->push_back(std::move(le));
  }
  return PromiseWorker::Run(
      env,
      [st, entries] {
        std::lock_guard<std::mutex> lock(st->mu);
        torch::NoGradGuard guard;
        std::map<std::string, torch::Tensor> named;
        for (auto& kv : orderedState(st->model)) named.emplace(kv.first, kv.second);
        for (const auto& e : *entries) {
          auto it = named.find(e.name);
          TORCH_CHECK(it != named.end(), "the model has no tensor named '", e.name, "'");
          try {
            if (e.fromFile) {
              loadFileTensorInto(e.file, it->second);
            } else {
              TORCH_CHECK(it->second.sizes().equals(e.array.sizes()), "shape mismatch: checkpoint has ", e.array.sizes(),
                          ", model has ", it->second.sizes());
              it->second.copy_(e.array);
            }
          } catch (const c10::Error& err) {
            TORCH_CHECK(false, "loading '", e.name, "': ", err.what_without_backtrace());
          }
        }
      },
      nullptr, keep);
}

Napi::Value ModelWrap::StateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  // copy: false hands out views of the live weights (save() inside the model's queue);
  // the public stateDict() copies so training cannot change what the caller holds.
  bool copy = !info[0].IsBoolean() || info[0].As<Napi::Boolean>().Value();
  auto tensors = std::make_shared<std::vector<std::pair<std::string, torch::Tensor>>>();
  return PromiseWorker::Run(
      env,
      [st, tensors, copy] {
        std::lock_guard<std::mutex> lock(st->mu);
        for (auto& kv : orderedState(st->model)) {
          auto host = moveToHost(kv.second);
          // is_alias_of, not is_same: moveToHost detaches, a new TensorImpl on the same storage.
          tensors->emplace_back(kv.first, copy && host.is_alias_of(kv.second) ? host.clone() : host);
        }
      },
      [tensors](Napi::Env env) -> Napi::Value {
        auto arr = Napi::Array::New(env, tensors->size());
        for (size_t i = 0; i < tensors->size(); ++i) arr.Set(i, namedTensor(env, (*tensors)[i].first, (*tensors)[i].second));
        return arr;
      });
}

Napi::Value ModelWrap::StateShapes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  std::lock_guard<std::mutex> lock(st->structure);  // never waits on a running kernel
  auto state = orderedState(st->model);
  auto arr = Napi::Array::New(env, state.size());
  for (size_t i = 0; i < state.size(); ++i) {
    auto o = Napi::Object::New(env);
    o.Set("name", state[i].first);
    o.Set("shape", fromShape(env, state[i].second.sizes()));
    o.Set("dtype", state[i].second.is_floating_point() ? "float32" : "int64");
    arr.Set(i, o);
  }
  return arr;
}

Napi::Value ModelWrap::Summary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  int64_t h = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 224;
  int64_t w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : 224;
  auto s = guarded(env, [&] {
    std::lock_guard<std::mutex> lock(st->structure);
    return st->model->summary(h, w);
  });
  auto o = Napi::Object::New(env);
  o.Set("params", static_cast<double>(s.params));
  o.Set("trainableParams", static_cast<double>(s.trainableParams));
  o.Set("macs", s.macs);
  auto layers = Napi::Array::New(env, s.layers.size());
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const auto& l = s.layers[i];
    auto lo = Napi::Object::New(env);
    lo.Set("name", l.name);
    lo.Set("type", l.type);
    lo.Set("inShape", fromShape(env, l.inShape));
    lo.Set("outShape", fromShape(env, l.outShape));
    lo.Set("params", static_cast<double>(l.params));
    lo.Set("macs", l.macs);
    layers.Set(i, lo);
  }
  o.Set("layers", layers);
  return o;
}

Napi::Value ModelWrap::ResetHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  int64_t n = info[0].As<Napi::Number>().Int64Value();
  bool seeded = info[1].IsNumber();
  uint64_t seed = seeded ? static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()) : 0;
  return PromiseWorker::Run(env, [st, n, seeded, seed] {
    std::lock_guard<std::mutex> lock(st->mu);
    std::lock_guard<std::mutex> structure(st->structure);
    {
      std::lock_guard<std::mutex> rng(rngMutex());
      if (seeded) torch::manual_seed(seed);
      st->model->resetHead(n);
    }
    st->optimizer.reset();  // its parameter list refers to the old head
  }, [this](Napi::Env env) -> Napi::Value {
    accountMemory(env);
    return env.Undefined();
  }, {info.This()});  // keeps this wrapper alive until the settle above runs
}

Napi::Value ModelWrap::ConfigureOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto o = info[0].As<Napi::Object>();
  std::string type = string(o, "type", "sgd");
  double lr = number(o, "lr", 0.01), headLr = number(o, "headLr", lr);
  double momentum = number(o, "momentum", 0.9), wd = number(o, "weightDecay", 0), eps = number(o, "eps", 1e-8);
  bool nesterov = boolean(o, "nesterov", false);
  double beta1 = 0.9, beta2 = 0.999;
  if (o.Get("betas").IsArray()) {
    auto b = o.Get("betas").As<Napi::Array>();
    beta1 = b.Get(0u).As<Napi::Number>().DoubleValue();
    beta2 = b.Get(1u).As<Napi::Number>().DoubleValue();
  }
  return PromiseWorker::Run(env, [st, type, lr, headLr, momentum, wd, eps, nesterov, beta1, beta2] {
    std::lock_guard<std::mutex> lock(st->mu);
    // Two groups: backbone, then head (its own learning rate).
    auto backbone = st->model->backboneParameters();
    auto head = st->model->headParameters();
    if (type == "sgd") {
      auto make = [&](double groupLr) {
        return std::make_unique<torch::optim::SGDOptions>(
            torch::optim::SGDOptions(groupLr).momentum(momentum).nesterov(nesterov).weight_decay(wd));
      };
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(backbone, make(lr));
      if (!head.empty()) groups.emplace_back(head, make(headLr));
      st->optimizer = std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(lr));
    } else if (type == "adamw") {
      auto make = [&](double groupLr) {
        return std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(groupLr).betas({beta1, beta2}).eps(eps).weight_decay(wd));
      };
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(backbone, make(lr));
      if (!head.empty()) groups.emplace_back(head, make(headLr));
      st->optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
    } else {
      TORCH_CHECK(false, "Expected 'sgd' or 'adamw' for optimizer but received '", type, "'");
    }
  }, nullptr);
}

Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto shape = toShape(info[1], "shape");
  auto input = wrapTypedArray(info[0], shape, "data");
  auto labels = wrapTypedArray(info[2], {shape.empty() ? 0 : shape[0]}, "labels");
  auto o = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  double smoothing = number(o, "labelSmoothing", 0), clip = number(o, "clipGradNorm", 0);
  // Distributed: this rank's share of the global batch times the world size, so
  // the averaged gradient is the global batch's mean even when shards differ.
  double lossScale = number(o, "lossScale", 1);
  std::string precision = string(o, "precision", "fp32");
  std::vector<double> lrs;
  if (o.Get("lr").IsArray()) {
    auto a = o.Get("lr").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) lrs.push_back(a.Get(i).As<Napi::Number>().DoubleValue());
  }
  bool step = boolean(o, "step", true);
  bool seeded = o.Get("seed").IsNumber();
  uint64_t seed = static_cast<uint64_t>(number(o, "seed", 0));
  struct Out { double loss = 0; int64_t correct = 0; double gradNorm = 0; };
  auto out = std::make_shared<Out>();
  return PromiseWorker::Run(
      env,
      [st, input, labels, smoothing, clip, lossScale, precision, lrs, step, seeded, seed, out] {
        std::lock_guard<std::mutex> lock(st->mu);
        TORCH_CHECK(st->optimizer, "no optimizer configured: call configureOptimizer first");
        if (!st->model->is_training()) st->model->train(true);
        st->optimizer->zero_grad();
        auto params = st->model->parameters();
        torch::Tensor loss;
        if (input.size(0) > 0) {
          auto x = toDevice(input, st->device);
          auto y = labels.to(st->device, torch::kInt64);
          torch::Tensor logits;
          {
            // Dropout draws from the process-wide generator: seed and draw in one go.
            std::unique_lock<std::mutex> rng(rngMutex(), std::defer_lock);
            if (seeded) {
              rng.lock();
              torch::manual_seed(seed);
            }
            AutocastScope autocast(precision, st->device);
            logits = st->model->forward(x);
          }
          loss = F::cross_entropy(logits.to(torch::kFloat32), y, F::CrossEntropyFuncOptions().label_smoothing(smoothing));
          (lossScale == 1 ? loss : loss * lossScale).backward();
          out->loss = loss.item<double>();
          out->correct = (logits.argmax(1) == y).sum().item<int64_t>();
        } else {
          // An empty shard still takes part in the allreduce (with zero gradients).
          TORCH_CHECK(st->distributed, "a training batch needs at least one image");
          for (auto& p : params)
            if (p.requires_grad()) p.mutable_grad() = torch::zeros_like(p);
        }
        TORCH_CHECK(std::isfinite(out->loss), "the training loss is ", out->loss, "; the step was not applied");
        if (st->distributed) st->distributed->averageGradients(params);
        if (clip > 0) out->gradNorm = torch::nn::utils::clip_grad_norm_(params, clip);
        auto& groups = st->optimizer->param_groups();
        for (size_t i = 0; i < lrs.size() && i < groups.size(); ++i) groups[i].options().set_lr(lrs[i]);
        if (step) st->optimizer->step();
      },
      [out](Napi::Env env) -> Napi::Value {
        auto r = Napi::Object::New(env);
        r.Set("loss", out->loss);
        r.Set("correct", static_cast<double>(out->correct));
        r.Set("gradNorm", out->gradNorm);
        return r;
      },
      {info[0], info[2]});
}

// Optimizer state (momentum buffers, Adam moments) as a LibTorch archive, for resume.
static Napi::Value optimizerArchive(const Napi::CallbackInfo& info, std::shared_ptr<ModelState> st, bool save) {
  std::string path = info[0].ToString().Utf8Value();
  return PromiseWorker::Run(info.Env(), [st, path, save] {
    std::lock_guard<std::mutex> lock(st->mu);
    TORCH_CHECK(st->optimizer, "no optimizer configured");
    if (save) {
      torch::serialize::OutputArchive archive;
      st->optimizer->save(archive);
      archive.save_to(path);
    } else {
      torch::serialize::InputArchive archive;
      archive.load_from(path, st->device);
      st->optimizer->load(archive);
    }
  }, nullptr);
}

Napi::Value ModelWrap::SaveOptimizer(const Napi::CallbackInfo& info) { return optimizerArchive(info, state(info.Env()), true); }

Napi::Value ModelWrap::LoadOptimizer(const Napi::CallbackInfo& info) { return optimizerArchive(info, state(info.Env()), false); }

Napi::Value ModelWrap::SetDistributed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto o = info[0].As<Napi::Object>();
  DistributedConfig c;
  c.masterAddr = string(o, "masterAddr", "127.0.0.1");
  c.port = static_cast<int>(number(o, "masterPort", 29500));
  c.rank = static_cast<int>(number(o, "rank", 0));
  c.worldSize = static_cast<int>(number(o, "worldSize", 1));
  c.timeoutMs = static_cast<int64_t>(number(o, "timeoutMs", 300000));
  return PromiseWorker::Run(env, [st, c] {
    auto d = std::make_shared<Distributed>(c);  // rendezvous: blocks until all ranks join
    std::lock_guard<std::mutex> lock(st->mu);
    // Every rank starts from rank 0's weights.
    std::vector<torch::Tensor> all;
    for (auto& kv : orderedState(st->model)) all.push_back(kv.second.detach());
    {
      torch::NoGradGuard guard;
      d->broadcast(all);
    }
    st->distributed = d;
  }, nullptr);
}

Napi::Value ModelWrap::BroadcastWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  return PromiseWorker::Run(env, [st] {
    std::lock_guard<std::mutex> lock(st->mu);
    TORCH_CHECK(st->distributed, "this model has not joined a process group");
    std::vector<torch::Tensor> all;
    for (auto& kv : orderedState(st->model)) all.push_back(kv.second.detach());
    torch::NoGradGuard guard;
    st->distributed->broadcast(all);
  }, nullptr);
}

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), state(info.Env())->device.str());
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    // Freed here, on the calling thread: releasing on the pool instead let
    // RSS creep up over many create/dispose cycles (allocator arenas).
    state_.reset();  // workers still running hold their own reference
    releaseHostCache();  // what this model's forwards left cached goes back too
    accountMemory(info.Env());
  }
  return info.Env().Undefined();
}

Napi::Value ModelWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

}  // namespace vggn
