// One long-lived thread per model for its kernels. libuv hands each call to
// whichever pool thread is free, and OpenMP keeps one team of worker threads
// per calling thread: with four pool threads a model's calls woke (or first
// created) up to four teams in turn, whose spinning workers competed for the
// same cores. At batch 1, where a VGG-16 forward is ~60 ms of many short
// parallel regions, that cost 10-20% of the call. Running a model's forwards,
// Grad-CAM and training steps on its own thread keeps one team hot.
// VGG_NATIVE_COMPUTE_THREAD=0 runs them on the pool thread as before.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace vggn {

class ComputeThread {
 public:
  ComputeThread() = default;
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;
  /** Stops the thread after the queued work (joins it; detaches when called from it). */
  ~ComputeThread();

  /**
   * Runs `fn` on this thread (started on first use, with LibTorch's thread settings
   * applied there) and waits for it; an exception thrown by `fn` is rethrown here.
   */
  void run(const std::function<void()>& fn);

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<void()>*> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vggn
