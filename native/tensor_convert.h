// Moving tensors across the N-API boundary without copies where possible:
// JS Float32Arrays are wrapped with from_blob; tensors going out become
// external ArrayBuffers that own a reference to the tensor.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace vggn {

std::vector<int64_t> toShape(const Napi::Value& v, const char* what);
Napi::Array fromShape(Napi::Env env, c10::IntArrayRef shape);

/** Wraps a Float32Array/BigInt64Array as a CPU tensor of `shape` (no copy). */
torch::Tensor wrapTypedArray(const Napi::Value& data, const std::vector<int64_t>& shape, const char* what);

/**
 * A JS typed array viewing the tensor's memory (a Float32Array for floating
 * point, BigInt64Array for int64). Moves it to CPU and makes it contiguous
 * only when needed; the ArrayBuffer keeps the tensor alive.
 */
Napi::Value toTypedArray(Napi::Env env, torch::Tensor t);

/** { name, data, shape } */
Napi::Object namedTensor(Napi::Env env, const std::string& name, torch::Tensor t);

}  // namespace vggn
