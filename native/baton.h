// Reading the arguments TypeScript hands to native code (sharp's "baton"):
// src/ has validated every value and applied every default already, so C++
// only copies fields into plain structs, checking their JS types on the way.
// A missing or mistyped field is a TypeError that names it, e.g.
// "trainStep: options.labelSmoothing must be a number". No default values here.
#pragma once

#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace vggn {

/** Throws a TypeError "<name> must be <expected>". */
[[noreturn]] void invalidArgument(Napi::Env env, const std::string& name, const char* expected);

// One JS value, `name` saying where it came from ("summary: height").
double toNumber(const Napi::Value& v, const std::string& name);
/** A number with no fractional part, within ±2^53. */
int64_t toInteger(const Napi::Value& v, const std::string& name);
bool toBoolean(const Napi::Value& v, const std::string& name);
std::string toString(const Napi::Value& v, const std::string& name);

/** The fields of one JS object, read strictly. */
class Baton {
 public:
  /** `name` names the object in errors ("trainStep: options"); throws unless `v` is an object. */
  Baton(const Napi::Value& v, std::string name);

  double number(const char* key) const;
  int64_t integer(const char* key) const;
  bool boolean(const char* key) const;
  std::string string(const char* key) const;
  /** An array of integers (any length). */
  std::vector<int64_t> integers(const char* key) const;
  /** An array of exactly `count` numbers. */
  std::vector<double> numbers(const char* key, size_t count) const;
  /** A nested object. */
  Baton object(const char* key) const;

  /** Whether an optional field (`key?` in src/binding.ts) is there: present and not undefined. */
  bool has(const char* key) const;
  /** The raw value, for fields of several shapes. */
  Napi::Value value(const char* key) const { return o_.Get(key); }
  /** "<object>.<key>", for error messages. */
  std::string name(const char* key) const { return name_ + "." + key; }
  [[noreturn]] void fail(const char* key, const char* expected) const { invalidArgument(o_.Env(), name(key), expected); }

 private:
  Napi::Object o_;
  std::string name_;
};

}  // namespace vggn
