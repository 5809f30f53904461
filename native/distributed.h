// Data-parallel training on torch.distributed's C++ side (c10d): a TCPStore
// rendezvous and a Gloo process group, gradients averaged by allreduce.
// Every wait is bounded by timeoutMs, and a fault is named: errors thrown on
// purpose read "[<CODE> ranks=<r,...>] <message>", which src/train/distributed.ts
// turns into a ModelError with that code (RENDEZVOUS_TIMEOUT,
// RENDEZVOUS_MISMATCH, RANK_LOST).
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
  /**
   * Blocks until every rank has joined (run it off the event loop), at most
   * timeoutMs; refuses ranks started with another world size.
   */
  explicit Distributed(const DistributedConfig& config);
  ~Distributed();
  /** Averages gradients across ranks (one flattened allreduce); a rank that stopped answering is a RANK_LOST error. */
  void averageGradients(const std::vector<torch::Tensor>& params);
  /** Rank 0's values overwrite every rank's (initial weights); the first call refuses models whose shapes differ from rank 0's. */
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /** Whether this build has c10d. */
  static bool available();

 private:
  struct Impl;
  DistributedConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vggn
