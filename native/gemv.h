// Fully connected layers on 1 to kGemvMaxRows rows, at memory speed.
#pragma once

#include <torch/torch.h>

namespace vggn {

/**
 * y = x W^T + b for x [N, I] with N <= kGemvMaxRows, W [O, I], b [O], all
 * contiguous CPU float32, on LibTorch's intra-op threads. Returns an undefined
 * tensor when the CPU lacks AVX2/FMA or an argument does not fit: the caller
 * then uses LibTorch's linear.
 */
torch::Tensor smallBatchLinear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// Batches past 4 run the 4-row kernels on each block of weights while it is
// in cache: VGG-16's fc6 at batch 8 read its 411 MB once (OpenBLAS's sgemm,
// held to its Haswell kernel by OPENBLAS_CORETYPE on some machines, took 34 ms).
constexpr int64_t kGemvMaxRows = 16;

/** Which kernel smallBatchLinear uses on this CPU: "avx512", "avx2" or "none". */
const char* gemvKernel();

}  // namespace vggn
