#include "baton.h"

#include <cmath>

namespace vggn {

void invalidArgument(Napi::Env env, const std::string& name, const char* expected) {
  throw Napi::TypeError::New(env, name + " must be " + expected);
}

double toNumber(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) invalidArgument(v.Env(), name, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t toInteger(const Napi::Value& v, const std::string& name) {
  constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(std::fabs(d) <= kMaxSafeInteger) || std::trunc(d) != d) invalidArgument(v.Env(), name, "an integer");
  return static_cast<int64_t>(d);
}

bool toBoolean(const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) invalidArgument(v.Env(), name, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string toString(const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) invalidArgument(v.Env(), name, "a string");
  return v.As<Napi::String>().Utf8Value();
}

Baton::Baton(const Napi::Value& v, std::string name) : name_(std::move(name)) {
  if (!v.IsObject() || v.IsArray()) invalidArgument(v.Env(), name_, "an object");
  o_ = v.As<Napi::Object>();
}

double Baton::number(const char* key) const { return toNumber(o_.Get(key), name(key)); }

int64_t Baton::integer(const char* key) const { return toInteger(o_.Get(key), name(key)); }

bool Baton::boolean(const char* key) const { return toBoolean(o_.Get(key), name(key)); }

std::string Baton::string(const char* key) const { return toString(o_.Get(key), name(key)); }

std::vector<int64_t> Baton::integers(const char* key) const {
  Napi::Value v = o_.Get(key);
  if (!v.IsArray()) fail(key, "an array of integers");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(toInteger(a.Get(i), name(key) + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<double> Baton::numbers(const char* key, size_t count) const {
  Napi::Value v = o_.Get(key);
  std::string expected = "an array of " + std::to_string(count) + " numbers";
  if (!v.IsArray() || v.As<Napi::Array>().Length() != count) fail(key, expected.c_str());
  auto a = v.As<Napi::Array>();
  std::vector<double> out;
  for (uint32_t i = 0; i < count; ++i) out.push_back(toNumber(a.Get(i), name(key) + "[" + std::to_string(i) + "]"));
  return out;
}

Baton Baton::object(const char* key) const { return Baton(o_.Get(key), name(key)); }

bool Baton::has(const char* key) const { return !o_.Get(key).IsUndefined(); }

}  // namespace vggn
