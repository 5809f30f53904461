// At small batches a fully connected layer reads each weight once per call and
// does next to no arithmetic with it: its speed is the memory bandwidth.
// OpenBLAS's sgemv reached 31 GB/s on fc6 of VGG (25088 x 4096, 411 MB) on
// the project's 2-vCPU Zen 5, this kernel 75 GB/s (5.5 ms against 13 ms):
// four rows of W at a time against every input row, so each weight is loaded
// once and each x vector stays in L1/L2. Sums run in float32 over 16 (8 on
// AVX2) lanes x 4 accumulators, then a tree: the error bound is the usual
// O(log I) eps of a pairwise-like sum, well inside the tests' 1e-4.
#include "gemv.h"

// GCC 12 reports the zeroed accumulators as maybe-uninitialised inside
// _mm512_reduce_add_ps (a known false positive of its AVX-512 headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include "cpu_features.h"
#include "runtime.h"

namespace vggn {

namespace {

constexpr int64_t kRowBlock = 4;
constexpr int64_t kInputRows = 4;  // the kernels' widest N

template <int N>
__attribute__((target("avx512f"))) void blockAvx512(const float* w, int64_t ldw, int64_t rows, const float* x, int64_t I, float* y,
                                                    int64_t ldy) {
  __m512 acc[kRowBlock][N];
  for (int r = 0; r < kRowBlock; ++r)
    for (int n = 0; n < N; ++n) acc[r][n] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= I; i += 16) {
    __m512 xv[N];
    for (int n = 0; n < N; ++n) xv[n] = _mm512_loadu_ps(x + n * I + i);
    for (int r = 0; r < kRowBlock; ++r) {
      if (r >= rows) break;
      __m512 wv = _mm512_loadu_ps(w + r * ldw + i);
      for (int n = 0; n < N; ++n) acc[r][n] = _mm512_fmadd_ps(wv, xv[n], acc[r][n]);
    }
  }
  if (i < I) {
    __mmask16 m = static_cast<__mmask16>((1u << (I - i)) - 1);
    for (int r = 0; r < rows; ++r) {
      __m512 wv = _mm512_maskz_loadu_ps(m, w + r * ldw + i);
      for (int n = 0; n < N; ++n) acc[r][n] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + n * I + i), acc[r][n]);
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int n = 0; n < N; ++n) y[n * ldy + r] = _mm512_reduce_add_ps(acc[r][n]);
}

__attribute__((target("avx2,fma"))) float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int N>
__attribute__((target("avx2,fma"))) void blockAvx2(const float* w, int64_t ldw, int64_t rows, const float* x, int64_t I, float* y,
                                                   int64_t ldy) {
  __m256 acc[kRowBlock][N];
  for (int r = 0; r < kRowBlock; ++r)
    for (int n = 0; n < N; ++n) acc[r][n] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= I; i += 8) {
    __m256 xv[N];
    for (int n = 0; n < N; ++n) xv[n] = _mm256_loadu_ps(x + n * I + i);
    for (int r = 0; r < kRowBlock; ++r) {
      if (r >= rows) break;
      __m256 wv = _mm256_loadu_ps(w + r * ldw + i);
      for (int n = 0; n < N; ++n) acc[r][n] = _mm256_fmadd_ps(wv, xv[n], acc[r][n]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    for (int n = 0; n < N; ++n) {
      float s = sum8(acc[r][n]);
      for (int64_t t = i; t < I; ++t) s += w[r * ldw + t] * x[n * I + t];
      y[n * ldy + r] = s;
    }
  }
}

using BlockFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t);

enum class Isa { kNone, kAvx2, kAvx512 };

/** The CPU's best. */
Isa detect() {
  const CpuFeatures& cpu = cpuFeatures();
  if (cpu.avx512f) return Isa::kAvx512;
  if (cpu.avx2) return Isa::kAvx2;
  return Isa::kNone;
}

/** The CPU's best under the gemv setting's cap (VGG_NATIVE_GEMV=avx2 or off: tests, comparisons). */
Isa isa() {
  static const Isa cpu = detect();
  switch (gemvCap()) {
    case GemvCap::kOff: return Isa::kNone;
    case GemvCap::kAvx2: return cpu == Isa::kNone ? Isa::kNone : Isa::kAvx2;
    default: return cpu;
  }
}

template <int N>
BlockFn pick() {
  return isa() == Isa::kAvx512 ? blockAvx512<N> : blockAvx2<N>;
}

BlockFn kernelFor(int64_t n) {
  switch (n) {
    case 1: return pick<1>();
    case 2: return pick<2>();
    case 3: return pick<3>();
    default: return pick<4>();
  }
}

}  // namespace

const char* gemvKernel() {
  switch (isa()) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "none";
  }
}

torch::Tensor smallBatchLinear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  bool fits = isa() != Isa::kNone && x.dim() == 2 && x.size(0) >= 1 && x.size(0) <= kGemvMaxRows && weight.dim() == 2 &&
              x.size(1) == weight.size(1) && x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
              weight.scalar_type() == torch::kFloat32 && weight.is_contiguous() &&
              (!bias.defined() || (bias.scalar_type() == torch::kFloat32 && bias.is_contiguous() && bias.numel() == weight.size(0)));
  if (!fits) return {};
  auto input = x.contiguous();
  const int64_t n = input.size(0), in = input.size(1), out = weight.size(0);
  auto y = torch::empty({n, out}, x.options());
  const float* w = weight.data_ptr<float>();
  const float* xp = input.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t blocks = (out + kRowBlock - 1) / kRowBlock;
  // Up to 4 input rows per kernel call (its registers); a batch of more goes
  // through each block of weight rows in groups of 4 while that block is
  // still in cache, so the weights are read from memory once whatever the batch.
  const BlockFn full = kernelFor(kInputRows), last = kernelFor((n - 1) % kInputRows + 1);
  auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      int64_t row = b * kRowBlock;
      for (int64_t r = 0; r < n; r += kInputRows) {
        BlockFn block = r + kInputRows < n ? full : last;
        block(w + row * in, in, std::min(kRowBlock, out - row), xp + r * in, in, yp + r * out + row, out);
      }
    }
  };
  // A grain of 16 blocks (64 rows, 6 MB of fc6) keeps each thread streaming long runs.
  at::parallel_for(0, blocks, 16, rows);
  if (bias.defined()) y.add_(bias);
  return y;
}

}  // namespace vggn
