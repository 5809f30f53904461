// TF32 for cuDNN convolutions and cuBLAS matrix products. LibTorch allows
// it for convolutions by default, as PyTorch does, so fp32 on an Ampere or
// later GPU rounds operands to 10-bit mantissas; with the tf32 setting off
// (VGG_NATIVE_TF32=0, applied by configure() at load) fp32 is full float32
// (what scripts/gpu/checks.js compares with PyTorch at 1e-4). No effect on
// the CPU.
#include <ATen/Context.h>

#include "runtime.h"

namespace vggn {

void disableTf32() {
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
}

}  // namespace vggn
