// Data-parallel training on torch.distributed's C++ side (c10d): a TCPStore
// rendezvous and a Gloo process group, gradients averaged by allreduce.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace vggn {

struct DistributedConfig {
  std::string masterAddr = "127.0.0.1";
  int port = 29500;
  int rank = 0;
  int worldSize = 1;
  int64_t timeoutMs = 300000;
};

class Distributed {
 public:
  /** Blocks until every rank has joined (run it off the event loop). */
  explicit Distributed(const DistributedConfig& config);
  ~Distributed();
  /** Averages gradients across ranks (one flattened allreduce). */
  void averageGradients(const std::vector<torch::Tensor>& params);
  /** Rank 0's values overwrite every rank's (initial weights). */
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /** Whether this build has c10d. */
  static bool available();

 private:
  struct Impl;
  DistributedConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vggn
