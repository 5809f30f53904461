#include "blas_threads.h"

#ifdef __linux__
#include <dlfcn.h>
#include <link.h>
#endif

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace vggn {

// Debian's LibTorch calls the pthreads build of OpenBLAS. OpenBLAS starts its
// worker threads when it is loaded, which is on the JS thread, so they run at
// the JS thread's priority, not at the lower one our pool threads take
// (runtime.cc); after each call they also spin in sched_yield for ~0.1 s.
// Measured in 64 concurrent classify calls on 2 cores: one such thread used
// 15.8 s of CPU at nice 0 and the event loop waited up to 26 ms for a core.
// OpenBLAS stops its pool itself around fork() (blas_thread_shutdown_) and
// restarts it on the next multi-threaded call from whichever thread makes it;
// we stop it once at load, so it restarts from a pool thread and its workers
// inherit that thread's niceness. Other BLAS libraries (MKL in the official
// LibTorch, which threads through OpenMP from the calling thread) need nothing.
#ifdef __linux__
namespace {
using ShutdownFn = int (*)();
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

struct OpenBlas {
  SetThreadsFn set;
  int poolSize;  // threads it was started with: never asked for more (growing a stopped pool is unsafe)
};
std::vector<OpenBlas> gOpenBlas;
std::mutex gApplyMutex;
std::atomic<int> gApplied{0};

int collect(struct dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name && *info->dlpi_name) static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
  return 0;
}
}  // namespace

int restartBlasThreadsLazily() {
  std::vector<std::string> objects;
  dl_iterate_phdr(collect, &objects);
  std::set<void*> done;
  for (const auto& name : objects) {
    void* handle = dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) continue;
    void* sym = dlsym(handle, "blas_thread_shutdown_");
    Dl_info where{};
    // dlsym also searches the object's dependencies: act only on the object that defines it.
    if (sym && dladdr(sym, &where) && where.dli_fname && name == where.dli_fname && done.insert(sym).second) {
      auto get = reinterpret_cast<GetThreadsFn>(dlsym(handle, "openblas_get_num_threads"));
      auto set = reinterpret_cast<SetThreadsFn>(dlsym(handle, "openblas_set_num_threads"));
      if (get && set) gOpenBlas.push_back({set, get()});
      reinterpret_cast<ShutdownFn>(sym)();
    }
    dlclose(handle);
  }
  return static_cast<int>(done.size());
}

void applyBlasThreads(int n) {
  if (gApplied.load() == n) return;
  std::lock_guard<std::mutex> lock(gApplyMutex);
  for (const auto& blas : gOpenBlas) blas.set(std::max(1, std::min(n, blas.poolSize)));
  gApplied.store(n);
}
#else
int restartBlasThreadsLazily() { return 0; }
void applyBlasThreads(int) {}
#endif

}  // namespace vggn
