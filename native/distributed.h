// Data-parallel training on torch.distributed's C++ side (c10d): a TCPStore
// rendezvous and a Gloo process group, gradients averaged by allreduce.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace vggn {

// Every field comes from TypeScript (src/train/distributed.ts resolves them); no defaults here.
struct DistributedConfig {
  std::string masterAddr;  // rank 0's host, where its TCPStore listens
  int port;
  int rank;
  int worldSize;
  int64_t timeoutMs;  // rendezvous and collective timeout
  // Collectives on CUDA tensors: "auto" (NCCL when this build has it, else
  // Gloo), "nccl" or "gloo" (NCCL refuses two ranks on one GPU). CPU tensors
  // always go through Gloo.
  std::string backend;
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
