#include "distributed.h"

#ifdef VGGN_WITH_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
// NCCL when this LibTorch has it (CMakeLists.txt and binding.gyp define VGGN_WITH_NCCL
// and USE_C10D_NCCL only for a CUDA LibTorch with nccl.h beside it).
#ifdef VGGN_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace vggn {

#ifdef VGGN_WITH_C10D
struct Distributed::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
#ifdef VGGN_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // made at the first collective on CUDA tensors
#endif
  int rank = 0, worldSize = 1;
  int64_t timeoutMs = 0;
  std::string backend;

  // CUDA tensors go through NCCL when this build has it, unless the backend
  // is "gloo" (NCCL refuses two ranks on one GPU); every rank decides alike,
  // since all hold their tensors on the same kind of device.
  c10::intrusive_ptr<c10d::Work> run(std::vector<torch::Tensor>& tensors, bool allreduce) {
    TORCH_CHECK(backend != "nccl" || tensors[0].is_cuda(),
                "distributed backend 'nccl' needs the model on a CUDA device; this one is on the CPU: use backend 'gloo' or 'auto'");
#ifdef VGGN_WITH_NCCL
    if (tensors[0].is_cuda() && backend != "gloo") {
      if (!nccl) {
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = std::chrono::milliseconds(timeoutMs);
        nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), rank, worldSize, options);
      }
      return allreduce ? nccl->allreduce(tensors) : nccl->broadcast(tensors);
    }
#endif
    return allreduce ? group->allreduce(tensors) : group->broadcast(tensors);
  }
};

bool Distributed::available() { return true; }

Distributed::Distributed(const DistributedConfig& config) : config_(config), impl_(std::make_unique<Impl>()) {
  TORCH_CHECK(config.worldSize >= 1 && config.rank >= 0 && config.rank < config.worldSize, "rank ", config.rank,
              " is outside a world of size ", config.worldSize);
  TORCH_CHECK(config.backend == "auto" || config.backend == "nccl" || config.backend == "gloo",
              "Expected 'auto', 'nccl' or 'gloo' for the distributed backend but received '", config.backend, "'");
#ifndef VGGN_WITH_NCCL
  TORCH_CHECK(config.backend != "nccl",
              "distributed backend 'nccl' needs a LibTorch with NCCL (a CUDA build that ships it); this one has none: use backend 'gloo' "
              "or 'auto'");
#endif
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(config.port);
  opts.isServer = config.rank == 0;
  opts.numWorkers = config.worldSize;
  opts.waitWorkers = true;
  opts.timeout = std::chrono::milliseconds(config.timeoutMs);
  impl_->store = c10::make_intrusive<c10d::TCPStore>(config.masterAddr, opts);
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(config.timeoutMs));
  options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, config.rank, config.worldSize, options);
  impl_->rank = config.rank;
  impl_->worldSize = config.worldSize;
  impl_->timeoutMs = config.timeoutMs;
  impl_->backend = config.backend;
}

void Distributed::averageGradients(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty() || config_.worldSize == 1) return;
  std::vector<torch::Tensor> flat{torch::cat([&] {
    std::vector<torch::Tensor> v;
    for (auto& g : grads) v.push_back(g.reshape(-1));
    return v;
  }())};
  impl_->run(flat, /*allreduce=*/true)->wait();
  flat[0].div_(config_.worldSize);
  int64_t offset = 0;
  for (auto& g : grads) {
    g.copy_(flat[0].narrow(0, offset, g.numel()).view_as(g));
    offset += g.numel();
  }
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> v{t};
    impl_->run(v, /*allreduce=*/false)->wait();
  }
}

#else
struct Distributed::Impl {};
bool Distributed::available() { return false; }
Distributed::Distributed(const DistributedConfig& config) : config_(config) {
  TORCH_CHECK(false, "this LibTorch build has no torch.distributed (c10d); distributed fine-tuning is unavailable");
}
void Distributed::averageGradients(const std::vector<torch::Tensor>&) {}
void Distributed::broadcast(const std::vector<torch::Tensor>&) {}
#endif

Distributed::~Distributed() = default;

}  // namespace vggn
