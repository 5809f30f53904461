#include "host_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vggn {
namespace {

// Below this, glibc's heap already reuses memory without new faults.
constexpr size_t kMinCached = 256 * 1024;
constexpr size_t kPage = 4096;
constexpr size_t kAlign = 64;  // c10's own CPU alignment (AVX-512 loads)
// A cached block serves a request up to this fraction larger than it needs.
constexpr size_t kSlackDivisor = 8;

// A parked block; `age` orders them for eviction (smaller: parked earlier).
struct Parked {
  void* p;
  uint64_t age;
};
using FreeMap = std::multimap<size_t, Parked>;

struct Cache {
  std::mutex mu;
  FreeMap free;                               // size -> block, not in use
  std::map<uint64_t, FreeMap::iterator> lru;  // age -> the same blocks, oldest first
  std::unordered_map<void*, size_t> sizes;    // every live or cached large block
  uint64_t clock = 0;
  uint64_t cachedBytes = 0;
  uint64_t limitBytes = uint64_t(2) << 30;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
};

// Never destroyed: tensors may be freed by static destructors at process exit.
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

void* systemAlloc(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, kAlign, n) != 0) return nullptr;
  return p;
}

// Caller holds c.mu.
void unpark(Cache& c, FreeMap::iterator it) {
  c.cachedBytes -= it->first;
  c.lru.erase(it->second.age);
  c.free.erase(it);
}

// Drops the least recently parked blocks until at most `keep` bytes stay
// parked, appending them to `out`. Caller holds c.mu.
void evictOldest(Cache& c, uint64_t keep, std::vector<void*>& out) {
  while (!c.lru.empty() && c.cachedBytes > keep) {
    auto oldest = c.lru.begin()->second;
    out.push_back(oldest->second.p);
    c.sizes.erase(oldest->second.p);
    unpark(c, oldest);
    c.evictions++;
  }
}

// Parks a freed block, first evicting the least recently parked ones until it
// fits under the cap: a process that switches workloads (fp32 then int8, a new
// batch size) keeps the blocks of the one it runs now instead of faulting in
// new pages for it while the old one's blocks sit parked. Returns the evicted
// blocks for the caller to free outside the lock. Caller holds c.mu.
std::vector<void*> park(Cache& c, void* p, size_t size) {
  std::vector<void*> evicted;
  evictOldest(c, c.limitBytes > size ? c.limitBytes - size : 0, evicted);
  auto it = c.free.emplace(size, Parked{p, ++c.clock});
  c.lru.emplace(it->second.age, it);
  c.cachedBytes += size;
  return evicted;
}

void deleteBlock(void* p) {
  if (p == nullptr) return;
  Cache& c = cache();
  std::vector<void*> evicted;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.sizes.find(p);
    if (it != c.sizes.end()) {
      if (it->second <= c.limitBytes) {
        evicted = park(c, p, it->second);
        p = nullptr;
      } else {
        c.sizes.erase(it);
      }
    }
  }
  for (void* e : evicted) std::free(e);
  std::free(p);  // small blocks, blocks larger than the cap, and blocks from before the hook
}

void* allocateBlock(size_t n) {
  if (n < kMinCached) return systemAlloc(n);
  size_t rounded = (n + kPage - 1) / kPage * kPage;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free.lower_bound(rounded);
    if (it != c.free.end() && it->first <= rounded + rounded / kSlackDivisor) {
      void* p = it->second.p;
      unpark(c, it);
      c.hits++;
      return p;
    }
    c.misses++;
  }
  void* p = systemAlloc(rounded);
  if (p == nullptr) {
    // Out of memory with blocks parked in the cache: give them back and retry once.
    releaseHostCache();
    p = systemAlloc(rounded);
    if (p == nullptr) return nullptr;
  }
  std::lock_guard<std::mutex> lock(c.mu);
  c.sizes.emplace(p, rounded);
  return p;
}

c10::DataPtr allocateDataPtr(size_t n) {
  if (n == 0) return {nullptr, nullptr, &deleteBlock, c10::Device(c10::DeviceType::CPU)};
  void* p = allocateBlock(n);
  TORCH_CHECK(p != nullptr, "vgg-native: out of memory allocating ", n, " bytes on the CPU");
  return {p, p, &deleteBlock, c10::Device(c10::DeviceType::CPU)};
}

// c10::Allocator's allocate is const in 1.13 and not in 2.3+, which also adds
// copy_data (native/torch_compat.h): both overloads and copy_data are defined
// without `override`, so the one that matches the base overrides it.
struct CachingCpuAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) const { return allocateDataPtr(n); }
  c10::DataPtr allocate(size_t n) { return allocateDataPtr(n); }
  void copy_data(void* dest, const void* src, size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const { return &deleteBlock; }
};

}  // namespace

void installHostAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Priority above the default's 0; never freed (see cache()).
    c10::SetCPUAllocator(new CachingCpuAllocator(), /*priority=*/1);
  });
}

void releaseHostCache() {
  FreeMap blocks;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    blocks.swap(c.free);
    c.lru.clear();
    for (auto& kv : blocks) c.sizes.erase(kv.second.p);
    c.cachedBytes = 0;
  }
  for (auto& kv : blocks) std::free(kv.second.p);
}

void setHostCacheLimit(uint64_t bytes) {
  std::vector<void*> evicted;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.limitBytes = bytes;
    evictOldest(c, bytes, evicted);  // a lower cap takes effect now
  }
  for (void* e : evicted) std::free(e);
}

HostCacheStats hostCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.cachedBytes, c.hits, c.misses, c.limitBytes, c.evictions};
}

}  // namespace vggn
