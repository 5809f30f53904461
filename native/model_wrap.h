// The N-API class behind the TypeScript `Vgg`: every heavy call runs in a
// PromiseWorker; the model lives in a shared state that in-flight workers
// keep alive, so dispose() never waits and never frees memory under a kernel.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "vgg_model.h"

namespace vggn {

class Distributed;

struct ModelState {
  ModelState(const VggConfig& config, torch::Device device) : model(config), device(device) {}
  Vgg model;
  torch::Device device;
  std::mutex mu;         // one kernel sequence at a time per model
  std::mutex structure;  // the module tree (resetHead swaps the head): summary and shapes read it without waiting on kernels
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::shared_ptr<Distributed> distributed;
  // CPU inference trunks by precision ("fp32", "bf16"), made on first use; under `mu`.
  std::map<std::string, std::unique_ptr<TrunkRunner>> trunks;
  /** The oneDNN trunk for this precision, or nullptr (GPU, engine off, no native bf16). */
  TrunkRunner* trunkFor(const std::string& precision);
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  /** Builds the model (allocation, initialisation, device copy) on the pool; resolves with a Model. */
  static Napi::Value CreateAsync(const Napi::CallbackInfo& info);
  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

 private:
  std::shared_ptr<ModelState> state(const Napi::Env& env) const;

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value StateShapes(const Napi::CallbackInfo& info);
  Napi::Value Summary(const Napi::CallbackInfo& info);
  Napi::Value ResetHead(const Napi::CallbackInfo& info);
  Napi::Value ConfigureOptimizer(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value SaveOptimizer(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizer(const Napi::CallbackInfo& info);
  Napi::Value SetDistributed(const Napi::CallbackInfo& info);
  Napi::Value BroadcastWeights(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  void accountMemory(Napi::Env env);

  std::shared_ptr<ModelState> state_;
  int64_t externalBytes_ = 0;
};

}  // namespace vggn
