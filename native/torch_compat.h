// One source for LibTorch 1.13 (Debian's libtorch-dev) and 2.x (the official
// archives, pip's torch): the few APIs the addon calls that changed between
// them are settled here, once, by TORCH_VERSION_MAJOR/MINOR, so that call
// sites read the same for both. Each entry names the header it follows.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>

#define VGGN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace vggn::compat {

// Autocast. Up to 2.3, aten/src/ATen/autocast_mode.h has one function per
// backend (is_enabled / set_enabled / set_autocast_gpu_dtype for CUDA,
// is_cpu_enabled / set_cpu_enabled / set_autocast_cpu_dtype for the CPU);
// 2.4 replaced them with is_autocast_enabled / set_autocast_enabled /
// set_autocast_dtype taking an at::DeviceType and marked the old ones
// C10_DEPRECATED (a warning at every call).
inline bool autocastEnabled(c10::DeviceType device) {
#if VGGN_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline void setAutocastEnabled(c10::DeviceType device, bool enabled) {
#if VGGN_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CUDA)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

inline void setAutocastDtype(c10::DeviceType device, at::ScalarType dtype) {
#if VGGN_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CUDA)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

}  // namespace vggn::compat

// c10::Allocator (c10/core/Allocator.h): 1.13 declares
//   virtual DataPtr allocate(size_t n) const = 0;
// 2.3 made it non-const (pytorch#120969) and added the pure virtual
//   virtual void copy_data(void* dest, const void* src, size_t count) const = 0;
// A CPU allocator therefore defines both allocate overloads and copy_data
// without `override` (native/host_allocator.cc): whichever matches the base
// overrides it, the other is an ordinary member, on every version.

// c10d (torch/csrc/distributed/c10d): what native/distributed.cc calls is the
// same in 1.13 and 2.x: TCPStore(host, TCPStoreOptions) with port, isServer,
// numWorkers, waitWorkers, timeout; PrefixStore(prefix, store);
// ProcessGroupGloo(store, rank, size, Options) with Options::create(timeout),
// `devices` and createDefaultDevice(); ProcessGroupNCCL(store, rank, size,
// Options) with Options::create(); allreduce / broadcast taking a
// std::vector<at::Tensor>& and returning a Work with wait(). 2.0 moved the
// collectives from ProcessGroup to c10d::Backend, the base of both groups
// there: the addon holds the concrete classes, never the base.

namespace vggn::compat {
// Optimizer state (torch/csrc/api/include/torch/optim/optimizer.h): 1.13 keys
// state_ by the parameter's TensorImpl address printed as a string
// (c10::guts::to_string, gone in 2.x); 2.x keys it by the TensorImpl* itself.
// `Key` is the map's own key_type, so the right branch is chosen on every version.
template <class Key>
Key optimizerStateKey(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}
}  // namespace vggn::compat
