#include "distributed.h"

#ifdef VGG_WITH_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace vggn {

#ifdef VGG_WITH_C10D
struct Distributed::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

bool Distributed::available() { return true; }

Distributed::Distributed(const DistributedConfig& config) : config_(config), impl_(std::make_unique<Impl>()) {
  TORCH_CHECK(config.worldSize >= 1 && config.rank >= 0 && config.rank < config.worldSize, "rank ", config.rank,
              " is outside a world of size ", config.worldSize);
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
  impl_->group->allreduce(flat)->wait();
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
    impl_->group->broadcast(v)->wait();
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
