// What the CPU can run, read once from CPUID (x86-64; elsewhere all false):
// the one place native code decides on instruction sets of its own (the
// gemv kernels, bf16 training); oneDNN decides for its own kernels.
#pragma once

namespace vggn {

struct CpuFeatures {
  bool avx2 = false;     // with FMA
  bool avx512f = false;  // and the OS saves the ZMM state
  bool avx512Vnni = false;
  bool avx512Bf16 = false;
  bool amxBf16 = false;  // and the OS saves the tile state
  bool amxInt8 = false;
};

/** This CPU's features (computed at the first call). */
const CpuFeatures& cpuFeatures();

}  // namespace vggn
