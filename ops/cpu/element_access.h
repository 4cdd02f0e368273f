#pragma once
// Reading and writing a CPU tensor's elements as floats whether it is float32 or
// bfloat16. Under mixed precision (core/precision.h) activations between layers may be
// stored in bf16 (docs/architecture.md, "bf16 activations"); the element-wise kernels
// (batch norm, add, shortcut, pooling) then compute in float exactly as for float32 and
// only the loads widen and the stores round. Kernels are templates over the access type,
// so the float32 instantiation is the plain pointer loop it always was.
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/tensor.h"

namespace residual::ops::cpu {

// Round to nearest even on the upper 16 bits; a NaN stays a (quiet) NaN. This is what
// vcvtneps2bf16, oneDNN and CUDA's __float2bfloat16_rn compute. Plain integer arithmetic,
// so GCC vectorises loops of it.
inline uint16_t to_bf16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(nan ? ((bits >> 16) | 0x40u) : rounded);
}

// Exact: every bf16 value is a float.
inline float from_bf16_bits(uint16_t half) {
  const uint32_t bits = static_cast<uint32_t>(half) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// A bfloat16 tensor's elements read as floats, indexed like a `const float*`.
struct Bf16Reader {
  const uint16_t* bits;
  float operator[](int64_t i) const { return from_bf16_bits(bits[i]); }
};

// A bfloat16 tensor written through float values: `w.set(i, v)` rounds v to bf16.
struct Bf16Writer {
  uint16_t* bits;
  void set(int64_t i, float v) const { bits[i] = to_bf16_bits(v); }
};

// A float32 tensor through the same interface as Bf16Writer.
struct F32Writer {
  float* p;
  void set(int64_t i, float v) const { p[i] = v; }
};

// Calls fn with t's elements as a `const float*` or a Bf16Reader.
template <typename Fn>
void with_reader(const Tensor& t, const char* op, Fn&& fn) {
  if (t.dtype() == DType::kBFloat16) {
    RESIDUAL_CHECK(t.device().is_cpu(), op, ": a bfloat16 tensor on ", t.device().str());
    fn(Bf16Reader{t.data<uint16_t>()});
  } else {
    fn(static_cast<const float*>(t.f32()));  // f32() checks the dtype
  }
}

// Calls fn with an F32Writer or a Bf16Writer on t.
template <typename Fn>
void with_writer(Tensor& t, const char* op, Fn&& fn) {
  if (t.dtype() == DType::kBFloat16) {
    RESIDUAL_CHECK(t.device().is_cpu(), op, ": a bfloat16 tensor on ", t.device().str());
    fn(Bf16Writer{t.data<uint16_t>()});
  } else {
    fn(F32Writer{t.f32()});
  }
}

}  // namespace residual::ops::cpu
