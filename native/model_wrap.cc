// The N-API side of Model only: read the JS arguments strictly into plain
// structs (baton.h), run the plain LibTorch functions (inference.h,
// state_dict.h, trainer.h) on the pool under the model's lock, and turn the
// results into JS values. See model_wrap.h for each method's contract.
#include "model_wrap.h"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton.h"
#include "distributed.h"
#include "file_tensor.h"
#include "gradcam.h"
#include "host_allocator.h"
#include "inference.h"
#include "onednn_trunk.h"
#include "promise_worker.h"
#include "runtime.h"
#include "state_dict.h"
#include "tensor_convert.h"
#include "trainer.h"

namespace vggn {

namespace {

/** The onednn setting off (VGG_NATIVE_ONEDNN=0) keeps inference on LibTorch's own kernels (for comparison). */
bool oneDnnEnabled() { return oneDnnSetting(); }

}  // namespace

TrunkRunner* ModelState::trunkFor(const std::string& precision) {
  if (precision == "int8") {
    TORCH_CHECK(device.is_cpu(), "precision 'int8' runs on the CPU only");
    TORCH_CHECK(oneDnnEnabled(), "precision 'int8' needs the oneDNN engine, which the onednn setting turned off");
    TORCH_CHECK(!int8Scales.empty(), "precision 'int8' needs a calibrated model: call quantize() first");
    auto it = trunks.find(precision);
    if (it == trunks.end()) it = trunks.emplace(precision, makeOneDnnInt8Trunk(int8Scales)).first;
    return it->second.get();
  }
  if (!device.is_cpu() || !oneDnnEnabled()) return nullptr;
  auto it = trunks.find(precision);
  if (it == trunks.end()) it = trunks.emplace(precision, makeOneDnnTrunk(precision)).first;
  return it->second.get();
}

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Model",
                                    {
                                        InstanceMethod<&ModelWrap::Forward>("forward"),
                                        InstanceMethod<&ModelWrap::Explain>("explain"),
                                        InstanceMethod<&ModelWrap::LoadStateDict>("loadStateDict"),
                                        InstanceMethod<&ModelWrap::StateDict>("stateDict"),
                                        InstanceMethod<&ModelWrap::StateShapes>("stateShapes"),
                                        InstanceMethod<&ModelWrap::ResetHead>("resetHead"),
                                        InstanceMethod<&ModelWrap::ComposeClassifierInput>("composeClassifierInput"),
                                        InstanceMethod<&ModelWrap::ConfigureOptimizer>("configureOptimizer"),
                                        InstanceMethod<&ModelWrap::TrainStep>("trainStep"),
                                        InstanceMethod<&ModelWrap::SaveOptimizer>("saveOptimizer"),
                                        InstanceMethod<&ModelWrap::Calibrate>("calibrate"),
                                        InstanceMethod<&ModelWrap::FinishCalibration>("finishCalibration"),
                                        InstanceMethod<&ModelWrap::SetQuantization>("setQuantization"),
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
  std::optional<uint64_t> seed;  // absent: initialisation draws from the generator as it is
};

ModelSpec parseSpec(const Napi::Value& v) {
  Baton o(v, "Model.create: config");
  ModelSpec m;
  VggConfig& c = m.config;
  c.depth = static_cast<int>(o.integer("depth"));
  c.batchNorm = o.boolean("batchNorm");
  c.numClasses = o.integer("numClasses");
  c.outIndices = o.integers("outIndices");
  c.frozenStages = static_cast<int>(o.integer("frozenStages"));
  c.normEval = o.boolean("normEval");
  c.ceilMode = o.boolean("ceilMode");
  c.withLastPool = o.boolean("withLastPool");
  c.dilations = o.integers("dilations");
  c.dropout = o.number("dropout");
  // initWeights? in src/binding.ts: only `false` skips initialisation.
  c.initWeights = !o.has("initWeights") || o.boolean("initWeights");
  m.device = o.string("device");
  if (o.has("seed")) m.seed = static_cast<uint64_t>(o.integer("seed"));
  return m;
}

std::shared_ptr<ModelState> buildState(const ModelSpec& m) {
  auto device = parseDevice(m.device);
  // Fixed input sizes: let cuDNN pick the fastest convolution algorithms.
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  std::lock_guard<std::mutex> rng(generatorMutex());
  if (m.seed) torch::manual_seed(*m.seed);
  auto st = std::make_shared<ModelState>(m.config, device);
  st->model->to(device);
  return st;
}

ForwardRequest parseForward(const Napi::Value& v) {
  Baton o(v, "forward: options");
  ForwardRequest r;
  r.precision = o.string("precision");
  r.channelsLast = o.boolean("channelsLast");
  Napi::Value outputs = o.value("outputs");
  const char* expected = "'logits', 'stages', 'classifier' or an array of layer names";
  if (outputs.IsString()) {
    std::string mode = outputs.As<Napi::String>().Utf8Value();
    if (mode != "logits" && mode != "stages" && mode != "classifier") o.fail("outputs", expected);
    r.outputs = mode == "logits" ? OutputKind::kLogits : mode == "stages" ? OutputKind::kStages : OutputKind::kClassifier;
  } else if (outputs.IsArray()) {
    r.outputs = OutputKind::kNamed;
    auto arr = outputs.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      std::string n = toString(arr.Get(i), o.name("outputs") + "[" + std::to_string(i) + "]");
      if (!isFeatureName(n)) throw Napi::RangeError::New(v.Env(), "unknown feature layer '" + n + "'");
      r.names.push_back(n);
    }
  } else {
    o.fail("outputs", expected);
  }
  // normalize? in src/binding.ts: present exactly when the input is 8-bit pixels.
  if (o.has("normalize")) {
    Baton n = o.object("normalize");
    auto mean = n.numbers("mean", 3), stdv = n.numbers("std", 3);
    r.normalize = PixelNormalize{{mean[0], mean[1], mean[2]}, {stdv[0], stdv[1], stdv[2]}};
  }
  return r;
}

ExplainRequest parseExplain(const Napi::Value& v) {
  Baton o(v, "explain: options");
  ExplainRequest r;
  auto stage = gradCamStage(o.string("layer"));
  if (!stage) throw Napi::RangeError::New(v.Env(), "explain: options.layer must be one of stage1..stage5");
  r.stage = *stage;
  // classIndices? in src/binding.ts: absent, each image's top-1 class is explained.
  if (o.has("classIndices")) r.classIndices = o.integers("classIndices");
  // normalize? in src/binding.ts: present exactly when the input is 8-bit pixels.
  if (o.has("normalize")) {
    Baton n = o.object("normalize");
    auto mean = n.numbers("mean", 3), stdv = n.numbers("std", 3);
    r.normalize = PixelNormalize{{mean[0], mean[1], mean[2]}, {stdv[0], stdv[1], stdv[2]}};
  }
  return r;
}

StateEntry parseStateEntry(const Napi::Value& v, const std::string& name, std::vector<Napi::Value>& keep) {
  Baton e(v, name);
  StateEntry entry;
  entry.name = e.string("name");
  Baton t = e.object("tensor");
  std::string kind = t.string("kind");
  if (kind == "file") {
    FileTensorSource f;
    f.path = t.string("path");
    f.byteOffset = t.integer("byteOffset");
    f.dtype = guarded(v.Env(), [&] { return parseStorageDType(t.string("dtype")); });
    f.storageNumel = t.integer("storageNumel");
    f.storageOffset = t.integer("storageOffset");
    f.shape = t.integers("shape");
    f.stride = t.integers("stride");
    // bigEndian? in src/binding.ts: only `true` means the bytes need swapping.
    f.bigEndian = t.has("bigEndian") && t.boolean("bigEndian");
    entry.source = std::move(f);
  } else if (kind == "array") {
    Napi::Value data = t.value("data");
    entry.source = wrapTypedArray(data, t.integers("shape"), t.name("data").c_str());
    keep.push_back(data);  // the tensor wraps its memory
  } else {
    t.fail("kind", "'file' or 'array'");
  }
  return entry;
}

OptimizerConfig parseOptimizer(const Napi::Value& v) {
  Baton o(v, "configureOptimizer: config");
  OptimizerConfig c;
  std::string type = o.string("type");
  if (type == "sgd") {
    c.type = OptimizerType::kSgd;
  } else if (type == "adamw") {
    c.type = OptimizerType::kAdamW;
  } else {
    o.fail("type", "'sgd' or 'adamw'");
  }
  c.lr = o.number("lr");
  c.headLr = o.number("headLr");
  c.weightDecay = o.number("weightDecay");
  c.momentum = o.number("momentum");
  c.nesterov = o.boolean("nesterov");
  auto betas = o.numbers("betas", 2);
  c.betas = {betas[0], betas[1]};
  c.eps = o.number("eps");
  return c;
}

TrainStepOptions parseTrainStep(const Napi::Value& v) {
  Baton o(v, "trainStep: options");
  TrainStepOptions t;
  t.labelSmoothing = o.number("labelSmoothing");
  t.clipGradNorm = o.number("clipGradNorm");
  auto lr = o.numbers("lr", 2);  // [backbone, head]
  t.lr = lr[0];
  t.headLr = lr[1];
  t.precision = o.string("precision");
  // The optional fields of src/binding.ts, each absence meaning "as if not there":
  // step? (only `false` skips the update), lossScale? (unscaled), seed? (not reseeded).
  t.update = !o.has("step") || o.boolean("step");
  // features? (only `true` means data is the trunk's output: cached features, classifier only).
  t.fromFeatures = o.has("features") && o.boolean("features");
  if (o.has("lossScale")) t.lossScale = o.number("lossScale");
  if (o.has("seed")) t.seed = static_cast<uint64_t>(o.integer("seed"));
  return t;
}

DistributedConfig parseDistributed(const Napi::Value& v) {
  Baton o(v, "setDistributed: config");
  DistributedConfig c;
  c.masterAddr = o.string("masterAddr");
  c.port = static_cast<int>(o.integer("masterPort"));
  c.rank = static_cast<int>(o.integer("rank"));
  c.worldSize = static_cast<int>(o.integer("worldSize"));
  c.timeoutMs = o.integer("timeoutMs");
  // backend? is optional for callers from before it existed: absent is "auto".
  c.backend = o.has("backend") ? o.string("backend") : "auto";
  return c;
}

Napi::Array namedTensors(Napi::Env env, const NamedTensors& tensors) {
  auto arr = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) arr.Set(i, namedTensor(env, tensors[i].first, tensors[i].second));
  return arr;
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

namespace {
/**
 * Whether the input is 8-bit pixels, which must come exactly with `normalize` and as
 * [N, H, W, 3]; float input must be 4-D when `float4d`. Throws TypeError(`message`) otherwise.
 */
bool isPixelInput(Napi::Env env, const torch::Tensor& input, const std::vector<int64_t>& shape, bool normalize, bool float4d,
                  const char* message) {
  bool pixels = input.scalar_type() == torch::kUInt8;
  bool ok = normalize == pixels && (pixels ? shape.size() == 4 && shape[3] == 3 : !float4d || shape.size() == 4);
  if (!ok) throw Napi::TypeError::New(env, message);
  return pixels;
}
}  // namespace

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto shape = toShape(info[1], "shape");
  auto input = wrapTypedArray(info[0], shape, "data");
  auto request = parseForward(info[2]);
  bool pixels = isPixelInput(env, input, shape, request.normalize.has_value(), false,
                             "forward: expected 8-bit pixels [N, H, W, 3] with options.normalize, or a Float32Array without it");
  if (request.outputs == OutputKind::kClassifier && (pixels || shape.size() != 4 || shape[1] != 512)) {
    throw Napi::TypeError::New(env, "forward: outputs 'classifier' takes the trunk's output, a Float32Array [N, 512, h, w]");
  }
  auto results = std::make_shared<NamedTensors>();
  return PromiseWorker::Run(
      env,
      [st, input, request, results] {
        std::lock_guard<std::mutex> lock(st->mu);
        *results = runForward(st->model, st->device, st->trunkFor(request.precision), input, request);
      },
      [results](Napi::Env env) -> Napi::Value { return namedTensors(env, *results); }, {info[0]});
}

Napi::Value ModelWrap::Explain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto shape = toShape(info[1], "shape");
  auto input = wrapTypedArray(info[0], shape, "data");
  auto request = parseExplain(info[2]);
  isPixelInput(env, input, shape, request.normalize.has_value(), true,
               "explain: expected 8-bit pixels [N, H, W, 3] with options.normalize, or a Float32Array [N, 3, H, W] without it");
  auto result = std::make_shared<GradCamResult>();
  return PromiseWorker::Run(
      env,
      [st, input, request, result] {
        std::lock_guard<std::mutex> lock(st->mu);
        *result = runGradCam(st->model, st->device, input, request);
      },
      [result](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("maps", namedTensor(env, "maps", result->maps));
        o.Set("logits", namedTensor(env, "logits", result->logits));
        auto classes = Napi::Array::New(env, result->classIndices.size());
        for (size_t i = 0; i < result->classIndices.size(); ++i) classes.Set(i, static_cast<double>(result->classIndices[i]));
        o.Set("classIndices", classes);
        return o;
      },
      {info[0]});
}

Napi::Value ModelWrap::LoadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  if (!info[0].IsArray()) invalidArgument(env, "loadStateDict: entries", "an array of { name, tensor }");
  auto arr = info[0].As<Napi::Array>();
  auto entries = std::make_shared<std::vector<StateEntry>>();
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    entries->push_back(parseStateEntry(arr.Get(i), "loadStateDict: entries[" + std::to_string(i) + "]", keep));
  }
  return PromiseWorker::Run(
      env,
      [st, entries] {
        std::lock_guard<std::mutex> lock(st->mu);
        loadState(st->model, *entries);
      },
      nullptr, keep);
}

Napi::Value ModelWrap::StateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  // copy? in src/binding.ts: only `false` hands out views of the live weights (save()
  // inside the model's queue); the public stateDict() copies so training cannot change them.
  bool copy = info[0].IsUndefined() || toBoolean(info[0], "stateDict: copy");
  auto tensors = std::make_shared<NamedTensors>();
  return PromiseWorker::Run(
      env,
      [st, tensors, copy] {
        std::lock_guard<std::mutex> lock(st->mu);
        *tensors = hostState(st->model, copy);
      },
      [tensors](Napi::Env env) -> Napi::Value { return namedTensors(env, *tensors); });
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

Napi::Value ModelWrap::ResetHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  int64_t n = toInteger(info[0], "resetHead: numClasses");
  // seed? in src/binding.ts: absent, the new head draws from the generator as it is.
  std::optional<uint64_t> seed;
  if (!info[1].IsUndefined()) seed = static_cast<uint64_t>(toInteger(info[1], "resetHead: seed"));
  return PromiseWorker::Run(
      env,
      [st, n, seed] {
        std::lock_guard<std::mutex> lock(st->mu);
        std::lock_guard<std::mutex> structure(st->structure);
        {
          std::lock_guard<std::mutex> rng(generatorMutex());
          if (seed) torch::manual_seed(*seed);
          st->model->resetHead(n);
        }
        st->optimizer.reset();  // its parameter list refers to the old head
      },
      [this](Napi::Env env) -> Napi::Value {
        accountMemory(env);
        return env.Undefined();
      },
      {info.This()});  // keeps this wrapper alive until the settle above runs
}

Napi::Value ModelWrap::ComposeClassifierInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto n = static_cast<int64_t>(info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0);
  // Copies: the arrays are small, and the worker must not read JS memory the caller may reuse.
  auto scale = wrapTypedArray(info[0], {n}, "composeClassifierInput: scale").clone();
  auto shift = wrapTypedArray(info[1], {n}, "composeClassifierInput: shift").clone();
  return PromiseWorker::Run(
      env,
      [st, scale, shift] {
        std::lock_guard<std::mutex> lock(st->mu);
        st->model->composeClassifierInput(scale, shift);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()});
}

Napi::Value ModelWrap::ConfigureOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto config = parseOptimizer(info[0]);
  return PromiseWorker::Run(
      env,
      [st, config] {
        std::lock_guard<std::mutex> lock(st->mu);
        st->optimizer = makeOptimizer(st->model, config);
      },
      nullptr);
}

Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto shape = toShape(info[1], "shape");
  auto input = wrapTypedArray(info[0], shape, "data");
  auto labels = wrapTypedArray(info[2], {shape.empty() ? 0 : shape[0]}, "labels");
  auto options = parseTrainStep(info[3]);
  auto out = std::make_shared<TrainStepResult>();
  return PromiseWorker::Run(
      env,
      [st, input, labels, options, out] {
        std::lock_guard<std::mutex> lock(st->mu);
        TORCH_CHECK(st->optimizer, "no optimizer configured: call configureOptimizer first");
        *out = trainStep(st->model, *st->optimizer, st->distributed.get(), st->device, input, labels, options);
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

Napi::Value ModelWrap::Calibrate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto shape = toShape(info[1], "shape");
  auto input = wrapTypedArray(info[0], shape, "data");
  Baton o(info[2], "calibrate: options");
  bool reset = o.boolean("reset");
  std::optional<PixelNormalize> normalize;
  // normalize? in src/binding.ts: present exactly when the input is 8-bit pixels.
  if (o.has("normalize")) {
    Baton n = o.object("normalize");
    auto mean = n.numbers("mean", 3), stdv = n.numbers("std", 3);
    normalize = PixelNormalize{{mean[0], mean[1], mean[2]}, {stdv[0], stdv[1], stdv[2]}};
  }
  isPixelInput(env, input, shape, normalize.has_value(), true,
               "calibrate: expected 8-bit pixels [N, H, W, 3] with options.normalize, or a Float32Array [N, 3, H, W] without it");
  auto images = std::make_shared<int64_t>(0);
  return PromiseWorker::Run(
      env,
      [st, input, normalize, reset, images] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (reset) st->calibration = CalibrationStats{};
        calibrateBatch(st->model, st->device, input, normalize, st->calibration);
        *images = st->calibration.images;
      },
      [images](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(*images)); }, {info[0]});
}

Napi::Value ModelWrap::FinishCalibration(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  Baton o(info[0], "finishCalibration: options");
  std::string method = o.string("method");
  double percentile = o.number("percentile");
  auto scales = std::make_shared<std::vector<float>>();
  return PromiseWorker::Run(
      env,
      [st, method, percentile, scales] {
        std::lock_guard<std::mutex> lock(st->mu);
        *scales = finishCalibration(st->calibration, method, percentile);
      },
      [scales](Napi::Env env) -> Napi::Value {
        auto t = torch::tensor(*scales, torch::kFloat32);
        return namedTensor(env, "scales", t);
      });
}

Napi::Value ModelWrap::SetQuantization(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  std::vector<float> scales;
  bool clear = info[0].IsNull() || info[0].IsUndefined();
  if (!clear) {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      invalidArgument(env, "setQuantization: scales", "a Float32Array or null");
    auto a = info[0].As<Napi::Float32Array>();
    scales.assign(a.Data(), a.Data() + a.ElementLength());
    for (float v : scales)
      if (!(v > 0) || !std::isfinite(v)) throw Napi::RangeError::New(env, "setQuantization: every scale must be a positive finite number");
  }
  return PromiseWorker::Run(
      env,
      [st, scales, clear] {
        std::lock_guard<std::mutex> lock(st->mu);
        st->trunks.erase("int8");
        st->int8Scales.clear();
        if (clear) return;
        size_t convs = 0;
        for (auto& l : st->model->trunkLayers()) convs += l.conv ? 1 : 0;
        TORCH_CHECK(scales.size() == convs, "setQuantization: ", scales.size(), " scales for a model with ", convs, " convolutions");
        st->int8Scales = scales;
        try {
          st->trunkFor("int8");  // refuses here (no VNNI, not the CPU, engine off) rather than at the first forward
        } catch (...) {
          st->int8Scales.clear();
          throw;
        }
      },
      nullptr);
}

Napi::Value ModelWrap::SaveOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto path = toString(info[0], "saveOptimizer: path");
  return PromiseWorker::Run(
      env,
      [st, path] {
        std::lock_guard<std::mutex> lock(st->mu);
        TORCH_CHECK(st->optimizer, "no optimizer configured");
        saveOptimizer(*st->optimizer, path);
      },
      nullptr);
}

Napi::Value ModelWrap::LoadOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto path = toString(info[0], "loadOptimizer: path");
  return PromiseWorker::Run(
      env,
      [st, path] {
        std::lock_guard<std::mutex> lock(st->mu);
        TORCH_CHECK(st->optimizer, "no optimizer configured");
        loadOptimizer(*st->optimizer, path, st->device);
      },
      nullptr);
}

Napi::Value ModelWrap::SetDistributed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  auto config = parseDistributed(info[0]);
  return PromiseWorker::Run(
      env,
      [st, config] {
        auto d = std::make_shared<Distributed>(config);  // rendezvous: blocks until all ranks join
        std::lock_guard<std::mutex> lock(st->mu);
        broadcastState(st->model, *d);  // every rank starts from rank 0's weights
        st->distributed = d;
      },
      nullptr);
}

Napi::Value ModelWrap::BroadcastWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  return PromiseWorker::Run(
      env,
      [st] {
        std::lock_guard<std::mutex> lock(st->mu);
        TORCH_CHECK(st->distributed, "this model has not joined a process group");
        broadcastState(st->model, *st->distributed);
      },
      nullptr);
}

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), state(info.Env())->device.str()); }

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    // Freed here, on the calling thread: releasing on the pool instead let
    // RSS creep up over many create/dispose cycles (allocator arenas).
    state_.reset();      // workers still running hold their own reference
    releaseHostCache();  // what this model's forwards left cached goes back too
    accountMemory(info.Env());
  }
  return info.Env().Undefined();
}

Napi::Value ModelWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

}  // namespace vggn
