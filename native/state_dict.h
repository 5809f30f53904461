// The model's parameters and buffers by name, as PyTorch's state_dict orders
// them: reading them out, loading them (from memory or straight from a
// checkpoint file) and broadcasting them across a process group.
#pragma once

#include <torch/torch.h>

#include <string>
#include <variant>
#include <vector>

#include "file_tensor.h"
#include "vgg_model.h"

namespace vggn {

class Distributed;

/** Parameters then buffers of each module, pre-order: PyTorch's state_dict order. The live tensors. */
NamedTensors orderedState(Vgg& model);

/** One tensor to load: from a checkpoint file region, or a CPU tensor (which may wrap JS memory). */
struct StateEntry {
  std::string name;
  std::variant<FileTensorSource, torch::Tensor> source;
};

/**
 * Copies each entry into the model's tensor of that name (converting dtype and
 * device as copy_ does). Throws c10::Error for an unknown name or a shape
 * mismatch, its message naming the entry; entries before it are loaded.
 */
void loadState(Vgg& model, const std::vector<StateEntry>& entries);

/**
 * Every tensor as toHost() gives it. copy: tensors that would still share memory
 * with the model (CPU float32 and int64 ones) are cloned; without it they are
 * views of the live weights, which later training changes.
 */
NamedTensors hostState(Vgg& model, bool copy);

/** Rank 0's parameters and buffers overwrite every rank's. */
void broadcastState(Vgg& model, Distributed& distributed);

}  // namespace vggn
