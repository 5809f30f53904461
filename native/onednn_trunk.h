// The CPU inference path for VGG's convolutional trunk, on oneDNN directly
// (the same libdnnl LibTorch itself calls).
//
// LibTorch's eager convolution hands oneDNN plain NCHW tensors: every call
// reorders the weights into the kernel's blocked layout and the activations
// in and out of it, and ReLU and pooling are separate passes over memory.
// Here, per model and precision:
// - batch norm is folded into the convolution (w * g / sqrt(v + eps), and
//   (b - m) * g / sqrt(v + eps) + beta: eval-mode BN is exactly that affine map);
// - weights are reordered once into the layout the chosen kernel wants;
// - each convolution carries its ReLU as a post-op, and activations stay in
//   the blocked layout (nChw16c, ...) from the first convolution to the last
//   pool; only the stages asked for are reordered back to dense NCHW float32;
// - primitives are created once per input shape; buffers come from the
//   caching allocator (native/host_allocator.cc), so a warm forward faults no page.
// bf16 runs oneDNN's bf16 kernels (avx512_core_bf16 / AMX) with float32 bias
// and accumulation. int8 (after calibration, native/calibrate.h) runs s8
// weights per output channel and u8 activations (s8 for the image) on VNNI,
// each convolution writing u8 in the next one's input scale, the last one
// float32; stage outputs come back dequantised. The weights are re-packed when any conv/BN tensor changes
// (load, training step): parameters by storage and version counter, BN's
// running statistics by content (the kernel updates them without a version bump).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vgg_model.h"

namespace vggn {

/** What oneDNN can do on this CPU, and whether the addon was built with the engine. */
struct OneDnnInfo {
  bool built = false;   // compiled with oneDNN headers against LibTorch's own libdnnl
  std::string version;  // oneDNN runtime version, e.g. "2.6.3"
  std::string isa;      // oneDNN's effective CPU ISA, e.g. "avx512_core_bf16"
  bool bf16 = false;    // native bf16 kernels (avx512_core_bf16 or AMX)
  bool int8 = false;    // int8 convolutions with VNNI (avx2_vnni, avx512_core_vnni and later, AMX)
};

OneDnnInfo oneDnnInfo();

/**
 * A TrunkRunner backed by oneDNN for one model and precision ("fp32" or "bf16"),
 * or nullptr when the addon was built without oneDNN. Keep it with the model:
 * it caches packed weights and primitives.
 */
std::unique_ptr<TrunkRunner> makeOneDnnTrunk(const std::string& precision);

/**
 * The int8 trunk (precision "int8"): u8/s8 activations and s8 per-channel
 * weights on VNNI, `inputScales` being each convolution's input scale from
 * the calibration (native/calibrate.h): x ~ q * scale. Stage outputs come back
 * dequantised to float32. Throws (c10::Error) where the CPU has no VNNI/AMX
 * or the addon was built without oneDNN.
 */
std::unique_ptr<TrunkRunner> makeOneDnnInt8Trunk(const std::vector<float>& inputScales);

}  // namespace vggn
