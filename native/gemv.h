// Fully connected layers on one to four rows, at memory speed.
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

constexpr int64_t kGemvMaxRows = 4;

/** Which kernel smallBatchLinear uses on this CPU: "avx512", "avx2" or "none". */
const char* gemvKernel();

}  // namespace vggn
