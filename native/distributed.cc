#include "distributed.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

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
namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

// Store keys of our own rendezvous and liveness checks (Gloo's keys have no "vggn/" prefix).
const std::string kJoinKey = "vggn/join/";      // + rank: the world size that rank was started with
const std::string kShapesKey = "vggn/shapes/";  // + rank: the shapes of the tensors of the first broadcast
const std::string kBeatKey = "vggn/beat/";      // + rank: a counter its heartbeat thread raises
const std::string kLostKey = "vggn/lost";       // the ranks the first survivor found missing
const std::string kVerdict = "verdict";         // + under a prefix: rank 0's "ok", or "refused:<why>"

// An error TypeScript turns into a coded ModelError (src/train/distributed.ts, distributedError):
// "[<CODE> ranks=<r,...>] <message>".
class RankError : public std::runtime_error {
 public:
  RankError(const char* code, const std::vector<int>& ranks, const std::string& message)
      : std::runtime_error(std::string("[") + code + " ranks=" + join(ranks) + "] " + message) {}

  static std::string join(const std::vector<int>& ranks) {
    std::string s;
    for (int r : ranks) s += (s.empty() ? "" : ",") + std::to_string(r);
    return s;
  }
};

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string rankList(const std::vector<int>& ranks) { return (ranks.size() == 1 ? "rank " : "ranks ") + RankError::join(ranks); }

/** How long a question to the store after a failure may take (connecting included): short, as the timeout has passed already. */
const Ms kAskTimeout{5000};

/** How often each rank proves it is alive: a tenth of the timeout, within 0.2..5 s. */
Ms beatInterval(int64_t timeoutMs) { return Ms(std::clamp<int64_t>(timeoutMs / 10, 200, 5000)); }

Ms remaining(Clock::time_point deadline) { return std::max(Ms(1), std::chrono::duration_cast<Ms>(deadline - Clock::now())); }

/** A client of rank 0's store; connecting retries until `timeout` (a late rank 0 is waited for). */
c10::intrusive_ptr<c10d::TCPStore> storeClient(const DistributedConfig& c, Ms timeout) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(c.port);
  opts.isServer = false;
  opts.waitWorkers = false;
  opts.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(c.masterAddr, opts);
}

/**
 * The ranks whose `prefix`<rank> key is absent, asked on a fresh connection (a
 * connection whose wait timed out may still receive that wait's answer); rank 0
 * when the store cannot be reached, since rank 0 holds it.
 */
std::vector<int> absentRanks(const DistributedConfig& c, const std::string& prefix) {
  try {
    auto s = storeClient(c, kAskTimeout);
    std::vector<int> absent;
    for (int r = 0; r < c.worldSize; ++r)
      if (!s->check({prefix + std::to_string(r)})) absent.push_back(r);
    return absent;
  } catch (const std::exception&) {
    return {c.rank == 0 ? 1 : 0};  // rank 0 cannot reach its own store: say the first other rank rather than itself
  }
}

[[noreturn]] void timedOut(const DistributedConfig& c, const std::string& prefix, const std::string& what) {
  auto absent = absentRanks(c, prefix);
  if (absent.empty()) absent.push_back(0);  // all arrived, rank 0's verdict did not
  throw RankError("RENDEZVOUS_TIMEOUT", absent,
                  rankList(absent) + " of " + std::to_string(c.worldSize) + " did not " + what + " at " + c.masterAddr + ":" +
                      std::to_string(c.port) + " within " + std::to_string(c.timeoutMs) + " ms (rank " + std::to_string(c.rank) +
                      " waited; distributed.timeoutMs sets the wait)");
}

/**
 * Every rank hands rank 0 its `value` under `prefix`<rank>; rank 0 compares each
 * with its own and answers "ok" or why not under `prefix`verdict, so a mismatch is
 * refused on every rank rather than left to hang in a collective. Other ranks read
 * rank 0's value before writing theirs, so rank 0 never refuses (and takes the
 * store down) before they have it. Store trouble is thrown as is, for the caller
 * to retry or report.
 *
 * @param describe - (rank 0's value, this rank's) -> what differs
 */
void agree(c10d::Store& store, const DistributedConfig& c, const std::string& prefix, const std::string& value, Clock::time_point deadline,
           const std::function<std::string(const std::string&, const std::string&)>& describe) {
  const std::string verdictKey = prefix + kVerdict;
  if (c.rank == 0) {
    store.set(prefix + "0", bytes(value));
    for (int r = 1; r < c.worldSize; ++r) {
      const std::string key = prefix + std::to_string(r);
      store.wait({key}, remaining(deadline));
      const auto theirs = text(store.get(key));
      if (theirs == value) continue;
      const std::string why = "rank " + std::to_string(r) + " differs from rank 0: " + describe(value, theirs);
      store.set(verdictKey, bytes("refused:" + why));
      std::this_thread::sleep_for(Ms(500));  // the others read the verdict before this store goes away
      throw RankError("RENDEZVOUS_MISMATCH", {r}, why);
    }
    store.set(verdictKey, bytes("ok"));
    return;
  }
  store.wait({prefix + "0"}, remaining(deadline));
  const auto zero = text(store.get(prefix + "0"));
  store.set(prefix + std::to_string(c.rank), bytes(value));  // also when it differs: rank 0 then refuses too
  if (zero != value)
    throw RankError("RENDEZVOUS_MISMATCH", {c.rank}, "rank " + std::to_string(c.rank) + " differs from rank 0: " + describe(zero, value));
  store.wait({verdictKey}, remaining(deadline));
  const auto verdict = text(store.get(verdictKey));
  if (verdict != "ok") throw RankError("RENDEZVOUS_MISMATCH", {c.rank}, verdict.substr(verdict.find(':') + 1));
}

std::string describeWorldSizes(const std::string& zero, const std::string& other) {
  return "WORLD_SIZE " + zero + " on rank 0, " + other + " here (every rank must be started with the same)";
}

/** "[64,3,3,3]" per tensor, joined by ';': the model's shape as the first broadcast sees it. */
std::string shapesOf(const std::vector<torch::Tensor>& tensors) {
  std::string s;
  for (const auto& t : tensors) {
    if (!s.empty()) s += ';';
    s += c10::str(t.sizes(), t.scalar_type());
  }
  return s;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == ';') parts.push_back(s.substr(start, i - start)), start = i + 1;
  return parts;
}

std::string describeShapes(const std::string& zero, const std::string& other) {
  const auto a = split(zero), b = split(other);
  if (a.size() != b.size())
    return "the model has " + std::to_string(a.size()) + " tensors on rank 0, " + std::to_string(b.size()) +
           " here (another architecture?)";
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return "state tensor " + std::to_string(i) + " is " + a[i] + " on rank 0, " + b[i] + " here";
  return "the shapes differ";
}

}  // namespace

struct Distributed::Impl {
  DistributedConfig config;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
#ifdef VGGN_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // made at the first collective on CUDA tensors
#endif
  bool shapesAgreed = false;
  // The heartbeat: its own connection, so a blocked beat never holds the store the collectives use.
  std::thread beat;
  std::mutex beatMu;
  std::condition_variable beatCv;
  bool stopping = false;

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(beatMu);
      stopping = true;
    }
    beatCv.notify_all();
    if (beat.joinable()) beat.join();
  }

  /** Rank 0 serves the store; the others connect, retrying until the deadline (rank 0 may start late, or an old store may be closing). */
  void rendezvous() {
    const auto& c = config;
    const auto deadline = Clock::now() + Ms(c.timeoutMs);
    const std::string ws = std::to_string(c.worldSize);
    if (c.rank == 0) {
      c10d::TCPStoreOptions opts;
      opts.port = static_cast<std::uint16_t>(c.port);
      opts.isServer = true;
      opts.waitWorkers = false;  // our own wait below names who is missing
      opts.timeout = Ms(c.timeoutMs);
      store = c10::make_intrusive<c10d::TCPStore>(c.masterAddr, opts);
      try {
        agree(*store, c, kJoinKey, ws, deadline, describeWorldSizes);
      } catch (const RankError&) {
        throw;
      } catch (const std::exception&) {
        timedOut(c, kJoinKey, "join the process group");
      }
      return;
    }
    for (;;) {
      try {
        store = storeClient(c, remaining(deadline));
        agree(*store, c, kJoinKey, ws, deadline, describeWorldSizes);
        return;
      } catch (const RankError&) {
        throw;
      } catch (const std::exception&) {
        store.reset();
        if (Clock::now() >= deadline) timedOut(c, kJoinKey, "join the process group");
        std::this_thread::sleep_for(Ms(250));
      }
    }
  }

  /**
   * Removes the finished round's join keys: a rank restarted while this store
   * still lives (its rank 0 not yet failed) then waits for the next rank 0
   * rather than joining a round that is over. Every rank has read them once
   * the Gloo group exists (its mesh needs every rank past the verdict).
   */
  void closeRound() {
    if (config.rank != 0) return;
    for (int r = 0; r < config.worldSize; ++r) store->deleteKey(kJoinKey + std::to_string(r));
    store->deleteKey(kJoinKey + kVerdict);
  }

  void startBeat() {
    auto client = storeClient(config, beatInterval(config.timeoutMs) * 2);
    beat = std::thread([this, client] {
      const auto key = kBeatKey + std::to_string(config.rank);
      std::unique_lock<std::mutex> lock(beatMu);
      while (!stopping) {
        try {
          client->add(key, 1);
        } catch (const std::exception&) {
          return;  // the store is gone: rank 0 died, and a collective will say so
        }
        beatCv.wait_for(lock, beatInterval(config.timeoutMs), [this] { return stopping; });
      }
    });
  }

  /**
   * The ranks whose heartbeat stood still over 2.5 beats (read on a fresh
   * connection), or what an earlier survivor found; rank 0 when its store is
   * gone. Empty when every rank still beats (a link between two ranks broke).
   */
  std::vector<int> missingRanks() {
    const auto interval = beatInterval(config.timeoutMs);
    try {
      auto s = storeClient(config, kAskTimeout);
      if (s->check({kLostKey})) return parseRanks(text(s->get(kLostKey)));
      std::vector<int64_t> before(config.worldSize);
      for (int r = 0; r < config.worldSize; ++r) before[r] = s->add(kBeatKey + std::to_string(r), 0);
      std::this_thread::sleep_for(interval * 5 / 2);
      std::vector<int> missing;
      for (int r = 0; r < config.worldSize; ++r)
        if (r != config.rank && s->add(kBeatKey + std::to_string(r), 0) == before[r]) missing.push_back(r);
      if (missing.empty()) return missing;
      return parseRanks(text(s->compareSet(kLostKey, {}, bytes(RankError::join(missing)))));
    } catch (const std::exception&) {
      return config.rank == 0 ? std::vector<int>{} : std::vector<int>{0};
    }
  }

  static std::vector<int> parseRanks(const std::string& list) {
    std::vector<int> ranks;
    size_t start = 0;
    while (start < list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      ranks.push_back(std::stoi(list.substr(start, end - start)));
      start = end + 1;
    }
    return ranks;
  }

  /** Waits for a collective; a failure becomes RANK_LOST naming the rank that stopped answering. */
  void wait(const c10::intrusive_ptr<c10d::Work>& work) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      auto missing = missingRanks();
      const std::string who = missing.empty() ? "a peer" : rankList(missing);
      throw RankError("RANK_LOST", missing,
                      who + " of " + std::to_string(config.worldSize) + " stopped answering (died, was stopped or cut off; timeout " +
                          std::to_string(config.timeoutMs) + " ms), so rank " + std::to_string(config.rank) +
                          " stops too; restart the group to resume from the last checkpoint. The collective said: " + e.what());
    }
  }

  // CUDA tensors go through NCCL when this build has it, unless the backend
  // is "gloo" (NCCL refuses two ranks on one GPU); every rank decides alike,
  // since all hold their tensors on the same kind of device.
  c10::intrusive_ptr<c10d::Work> run(std::vector<torch::Tensor>& tensors, bool allreduce) {
    TORCH_CHECK(config.backend != "nccl" || tensors[0].is_cuda(),
                "distributed backend 'nccl' needs the model on a CUDA device; this one is on the CPU: use backend 'gloo' or 'auto'");
#ifdef VGGN_WITH_NCCL
    if (tensors[0].is_cuda() && config.backend != "gloo") {
      if (!nccl) {
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = std::chrono::milliseconds(config.timeoutMs);
        nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), config.rank,
                                                           config.worldSize, options);
      }
      return allreduce ? nccl->allreduce(tensors) : nccl->broadcast(tensors);
    }
#endif
    return allreduce ? group->allreduce(tensors) : group->broadcast(tensors);
  }

  /** Before the first broadcast (the initial weights): every rank's model must have rank 0's shapes. */
  void agreeOnShapes(const std::vector<torch::Tensor>& tensors) {
    try {
      agree(*store, config, kShapesKey, shapesOf(tensors), Clock::now() + Ms(config.timeoutMs), describeShapes);
    } catch (const RankError&) {
      throw;
    } catch (const std::exception&) {
      timedOut(config, kShapesKey, "hand over its model's shapes");
    }
    shapesAgreed = true;
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
  impl_->config = config;
  impl_->rendezvous();
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(config.timeoutMs));
  options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, config.rank, config.worldSize, options);
  impl_->closeRound();
  impl_->startBeat();
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
  impl_->wait(impl_->run(flat, /*allreduce=*/true));
  flat[0].div_(config_.worldSize);
  int64_t offset = 0;
  for (auto& g : grads) {
    g.copy_(flat[0].narrow(0, offset, g.numel()).view_as(g));
    offset += g.numel();
  }
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (!impl_->shapesAgreed) impl_->agreeOnShapes(tensors);
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> v{t};
    impl_->wait(impl_->run(v, /*allreduce=*/false));
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
