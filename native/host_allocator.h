// A caching CPU allocator for LibTorch: large blocks freed by one forward or
// training step are handed to the next instead of going back to the kernel.
//
// Why: glibc serves every allocation above its mmap threshold (at most 32 MiB,
// and we fix it at 1 MiB to keep RSS flat) with a fresh mmap, so each layer's
// activations, im2col buffers and oneDNN scratchpads fault in page by page on
// every call; on this project's VMs a page fault costs microseconds and they
// took a third or more of the CPU time of a VGG forward. LibTorch's ideep
// (oneDNN) glue allocates through the same c10 CPU allocator, so one hook
// covers eager kernels, oneDNN primitives and autograd.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vggn {

struct HostCacheStats {
  uint64_t cachedBytes;  // held for reuse, not in use
  uint64_t hits;         // allocations served from the cache
  uint64_t misses;       // large allocations that went to the system
  uint64_t limitBytes;   // cap on cachedBytes
  uint64_t evictions;    // parked blocks freed to stay under the cap (newer ones parked, or the cap lowered)
};

/** Installs the caching allocator as c10's CPU allocator (once per process). */
void installHostAllocator();

/** Frees every cached block (dispose() calls it: a disposed model's memory goes back now). */
void releaseHostCache();

/** Sets the cap on cached bytes (the oldest parked blocks beyond it are freed now); 0 turns caching off. */
void setHostCacheLimit(uint64_t bytes);

HostCacheStats hostCacheStats();

}  // namespace vggn
