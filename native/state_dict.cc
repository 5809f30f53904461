#include "state_dict.h"

#include <map>

#include "distributed.h"
#include "runtime.h"

namespace vggn {

NamedTensors orderedState(Vgg& model) {
  NamedTensors out;
  for (const auto& item : model->named_modules("", /*include_self=*/true)) {
    std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

void loadState(Vgg& model, const std::vector<StateEntry>& entries) {
  torch::NoGradGuard guard;
  std::map<std::string, torch::Tensor> named;
  for (auto& kv : orderedState(model)) named.emplace(kv.first, kv.second);
  for (const auto& e : entries) {
    auto it = named.find(e.name);
    TORCH_CHECK(it != named.end(), "the model has no tensor named '", e.name, "'");
    try {
      if (const auto* file = std::get_if<FileTensorSource>(&e.source)) {
        loadFileTensorInto(*file, it->second);
      } else {
        const auto& array = std::get<torch::Tensor>(e.source);
        TORCH_CHECK(it->second.sizes().equals(array.sizes()), "shape mismatch: checkpoint has ", array.sizes(), ", model has ",
                    it->second.sizes());
        it->second.copy_(array);
      }
    } catch (const c10::Error& err) {
      TORCH_CHECK(false, "loading '", e.name, "': ", err.what_without_backtrace());
    }
  }
}

NamedTensors hostState(Vgg& model, bool copy) {
  NamedTensors out;
  for (auto& kv : orderedState(model)) {
    auto host = toHost(kv.second);
    // is_alias_of, not is_same: toHost detaches, a new TensorImpl on the same storage.
    out.emplace_back(kv.first, copy && host.is_alias_of(kv.second) ? host.clone() : host);
  }
  return out;
}

void broadcastState(Vgg& model, Distributed& distributed) {
  std::vector<torch::Tensor> all;
  for (auto& kv : orderedState(model)) all.push_back(kv.second.detach());
  torch::NoGradGuard guard;
  distributed.broadcast(all);
  for (auto& t : all) t.unsafeGetTensorImpl()->bump_version();  // the collective wrote the memory directly
}

}  // namespace vggn
