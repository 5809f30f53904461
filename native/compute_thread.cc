#include "compute_thread.h"

#include <cstdlib>
#include <cstring>

#include "runtime.h"

namespace vggn {

namespace {
bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("VGG_NATIVE_COMPUTE_THREAD");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}
}  // namespace

ComputeThread::~ComputeThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();
  else
    thread_.join();
}

void ComputeThread::run(const std::function<void()>& fn) {
  if (!enabled() || (thread_.joinable() && thread_.get_id() == std::this_thread::get_id())) {
    applyThreadSettings();
    fn();
    return;
  }
  std::packaged_task<void()> task([&fn] {
    applyThreadSettings();
    fn();
  });
  auto done = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    queue_.push_back(&task);
  }
  wake_.notify_one();
  done.get();  // rethrows what fn threw
}

void ComputeThread::loop() {
  for (;;) {
    std::packaged_task<void()>* task = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = queue_.front();
      queue_.pop_front();
    }
    (*task)();  // the caller waits on its future, so the task outlives this call
  }
}

}  // namespace vggn
