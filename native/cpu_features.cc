// CPUID leaf 7 (Intel SDM vol. 2A, "CPUID"): subleaf 0 EBX bit 5 AVX2, bit 16
// AVX512F; ECX bit 11 AVX512_VNNI; EDX bit 22 AMX-BF16, bit 25 AMX-INT8;
// subleaf 1 EAX bit 5 AVX512_BF16. A feature also needs the OS to save its
// register state (XCR0: bits 5-7 opmask/ZMM, 17-18 tile config/data).
#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace vggn {

namespace {

#if defined(__x86_64__) || defined(__i386__)
unsigned long long xcr0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  if (!osxsave || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const unsigned long long x = xcr0();
  const bool ymm = (x & 0x6) == 0x6;
  const bool zmm = ymm && (x & 0xe0) == 0xe0;
  const bool tiles = (x & 0x60000) == 0x60000;
  f.avx2 = ymm && fma && (b & (1u << 5));
  f.avx512f = zmm && (b & (1u << 16));
  f.avx512Vnni = f.avx512f && (c & (1u << 11));
  f.amxBf16 = tiles && (d & (1u << 22));
  f.amxInt8 = tiles && (d & (1u << 25));
  unsigned maxSub = a;
  if (maxSub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512Bf16 = f.avx512f && (a & (1u << 5));
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpuFeatures() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace vggn
