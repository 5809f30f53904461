// VGG_NATIVE_TF32=0 turns TensorFloat-32 off for cuDNN convolutions and cuBLAS
// matrix products. LibTorch allows it for convolutions by default, as PyTorch
// does, so fp32 on an Ampere or later GPU rounds operands to 10-bit mantissas;
// with it off, fp32 is full float32 (what scripts/gpu/checks.js compares with
// PyTorch at 1e-4). Read once, when the addon loads; no effect on the CPU.
#include <ATen/Context.h>

#include <cstdlib>
#include <string>

namespace vggn {
namespace {

[[maybe_unused]] const bool kTf32Applied = [] {
  const char* v = std::getenv("VGG_NATIVE_TF32");
  if (v && std::string(v) == "0") {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  return true;
}();

}  // namespace
}  // namespace vggn
