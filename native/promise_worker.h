// Runs a piece of LibTorch work on the libuv pool and settles a Promise:
// the event loop never waits on a kernel, and any c10::Error or
// std::exception becomes a rejection carrying its message (never a crash).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime.h"

namespace vggn {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Settle = std::function<Napi::Value(Napi::Env)>;

  /** keepAlive: JS values whose memory the work reads (typed arrays). */
  PromiseWorker(Napi::Env env, Work work, Settle settle, const std::vector<Napi::Value>& keepAlive = {})
      : Napi::AsyncWorker(env, "vgg-native"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        settle_(std::move(settle)) {
    for (const auto& v : keepAlive) refs_.push_back(Napi::Persistent(v));
  }

  /** Queues the work and returns its Promise. */
  static Napi::Promise Run(Napi::Env env, Work work, Settle settle, const std::vector<Napi::Value>& keepAlive = {}) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(settle), keepAlive);
    auto promise = w->deferred_.Promise();
    w->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      applyThreadSettings();
      work_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }

  // Settling can itself fail while an environment is torn down (a worker
  // thread exiting): nothing may escape into libuv's callback then.
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(settle_ ? settle_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      rejectQuietly(e.Value());
    } catch (const std::exception& e) {
      try {
        rejectQuietly(Napi::Error::New(env, e.what()).Value());
      } catch (...) {  // creating the Error can fail during teardown too
      }
    }
  }

  void OnError(const Napi::Error& e) override { rejectQuietly(e.Value()); }

 private:
  void rejectQuietly(const Napi::Value& reason) {
    try {
      deferred_.Reject(reason);
    } catch (...) {
    }
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Settle settle_;
  std::vector<Napi::Reference<Napi::Value>> refs_;
};

/**
 * Tells V8 about native memory. Uses the C call and ignores its status: it also
 * runs in finalizers, where an environment being torn down (a worker thread
 * exiting) must not turn into a C++ exception and std::terminate.
 */
inline void adjustExternalMemory(napi_env env, int64_t delta) {
  int64_t ignored = 0;
  if (delta != 0) napi_adjust_external_memory(env, delta, &ignored);
}

/** Runs synchronous native code, turning LibTorch errors into JS exceptions. */
template <typename Fn>
auto guarded(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace vggn
