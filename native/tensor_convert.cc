#include "tensor_convert.h"

#include "promise_worker.h"

#include <cmath>

namespace vggn {

std::vector<int64_t> toShape(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string("Expected an array of sizes for ") + what);
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || std::floor(d) != d || d > 9.0e15)
      throw Napi::RangeError::New(v.Env(), std::string("Expected non-negative integer sizes for ") + what);
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

Napi::Array fromShape(Napi::Env env, c10::IntArrayRef shape) {
  auto arr = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) arr.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  return arr;
}

torch::Tensor wrapTypedArray(const Napi::Value& data, const std::vector<int64_t>& shape, const char* what) {
  Napi::Env env = data.Env();
  if (!data.IsTypedArray()) throw Napi::TypeError::New(env, std::string("Expected a typed array for ") + what);
  auto ta = data.As<Napi::TypedArray>();
  int64_t n = 1;
  for (auto s : shape) n *= s;
  torch::ScalarType type;
  switch (ta.TypedArrayType()) {
    case napi_float32_array: type = torch::kFloat32; break;
    case napi_bigint64_array: type = torch::kInt64; break;
    case napi_int32_array: type = torch::kInt32; break;
    case napi_uint8_array: type = torch::kUInt8; break;
    default: throw Napi::TypeError::New(env, std::string("Expected a Float32Array, Uint8Array or BigInt64Array for ") + what);
  }
  if (static_cast<int64_t>(ta.ElementLength()) != n)
    throw Napi::RangeError::New(env, std::string("Expected ") + std::to_string(n) + " elements for " + what + " but received " +
                                         std::to_string(ta.ElementLength()));
  auto* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return torch::from_blob(base, shape, torch::TensorOptions().dtype(type));
}

namespace {
struct TensorHolder {
  torch::Tensor tensor;
  int64_t bytes;
};
}  // namespace

Napi::Value toTypedArray(Napi::Env env, torch::Tensor t) {
  t = t.detach();
  if (!t.device().is_cpu()) t = t.to(torch::kCPU);
  bool isInt = !t.is_floating_point();
  if (isInt && t.scalar_type() != torch::kInt64) t = t.to(torch::kInt64);
  if (!isInt && t.scalar_type() != torch::kFloat32) t = t.to(torch::kFloat32);
  t = t.contiguous();
  size_t n = static_cast<size_t>(t.numel());
  size_t bytes = n * t.element_size();
  Napi::ArrayBuffer buffer;
  if (n == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* holder = new TensorHolder{t, static_cast<int64_t>(bytes)};
    buffer = Napi::ArrayBuffer::New(
        env, t.data_ptr(), bytes,
        [](Napi::Env env, void*, TensorHolder* h) {
          adjustExternalMemory(env, -h->bytes);
          delete h;
        },
        holder);
    // Lets V8's GC see native memory it would otherwise not count.
    adjustExternalMemory(env, holder->bytes);
  }
  if (isInt) return Napi::BigInt64Array::New(env, n, buffer, 0);
  return Napi::Float32Array::New(env, n, buffer, 0);
}

Napi::Object namedTensor(Napi::Env env, const std::string& name, torch::Tensor t) {
  auto o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("shape", fromShape(env, t.sizes()));
  o.Set("dtype", t.is_floating_point() ? "float32" : "int64");
  o.Set("data", toTypedArray(env, t));
  return o;
}

}  // namespace vggn
