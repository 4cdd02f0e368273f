#pragma once
// Helpers shared by the op tests: seeded random tensors, and a comparison of a float32
// op result against a double-precision reference with a tolerance that follows float32
// rounding (relative to the sum of |terms| that formed each element, not to the possibly
// cancelled result).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace residual::ref {

// Every test seeds its own engine, so a failing test reproduces when run alone.
using Rng = std::mt19937;

inline void fill_uniform(Tensor& t, Rng& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
}

inline Tensor uniform_tensor(const Shape& shape, Rng& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::empty(shape);
  fill_uniform(t, rng, lo, hi);
  return t;
}

// Values (k - n / 2) / n for a random permutation of k: all distinct and exactly
// representable, so a max has no ties and the argmax the reference picks is the only one.
inline Tensor distinct_tensor(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  // A power-of-two denominator keeps every value exact in float32.
  float denom = 1.f;
  while (denom < static_cast<float>(n)) denom *= 2.f;
  for (int64_t i = 0; i < n; ++i) t.f32()[i] = static_cast<float>(order[i] - n / 2) / denom;
  return t;
}

// The bfloat16 value nearest to `value` (ties to the one with an even last bit; past the
// largest finite bf16 by half a step or more: infinity), as a float. Worked out from the
// two bf16 neighbours in double, not with the kernels' integer rounding trick.
inline float bf16_nearest(float value) {
  if (std::isnan(value) || std::isinf(value)) return value;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t toward_zero = bits & 0xffff0000u, away = toward_zero + 0x10000u;
  float low, high;
  std::memcpy(&low, &toward_zero, sizeof low);
  std::memcpy(&high, &away, sizeof high);
  // Past the largest finite bf16 the next step would be 2^128 (infinity's place).
  const double high_place = std::isinf(high) ? std::copysign(std::ldexp(1.0, 128), value) : high;
  const double to_low = std::abs(static_cast<double>(value) - low);
  const double to_high = std::abs(static_cast<double>(value) - high_place);
  if (to_low < to_high) return low;
  if (to_high < to_low) return high;
  return ((toward_zero >> 16) & 1u) == 0 ? low : high;
}

// A copy of `t` (float32, host) with every element rounded to bf16 by bf16_nearest.
inline Tensor bf16_rounded(const Tensor& t) {
  Tensor r = Tensor::empty(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.f32()[i] = bf16_nearest(t.f32()[i]);
  return r;
}

// An output buffer full of NaN: an element the op forgets to write fails the comparison.
inline Tensor nan_tensor(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  t.fill(std::numeric_limits<float>::quiet_NaN());
  return t;
}

// A tensor's elements readable on the host: itself on the CPU, a host copy otherwise
// (results of device kernels are compared with host references this way).
inline Tensor host_copy(const Tensor& t) {
  return t.device().is_cpu() ? t : t.to(Device::cpu());
}

// The values of a float32 or bfloat16 tensor (bf16 widened exactly).
inline std::vector<double> to_double(const Tensor& t) {
  const Tensor host = host_copy(t);
  if (host.dtype() != DType::kBFloat16) {
    return std::vector<double>(host.f32(), host.f32() + host.numel());
  }
  std::vector<double> values(static_cast<size_t>(host.numel()));
  for (int64_t i = 0; i < host.numel(); ++i) {
    const uint32_t bits = static_cast<uint32_t>(host.data<uint16_t>()[i]) << 16;
    float value;
    std::memcpy(&value, &bits, sizeof value);
    values[static_cast<size_t>(i)] = value;
  }
  return values;
}

// A copy of `t` (float32, host) stored as `dtype`, float32 or bfloat16 (each element
// rounded to the nearest bf16, as bf16_nearest).
inline Tensor stored_as(const Tensor& t, DType dtype) {
  if (dtype != DType::kBFloat16) return t.clone();
  Tensor r = Tensor::empty(t.shape(), Device::cpu(), DType::kBFloat16);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float rounded = bf16_nearest(t.f32()[i]);
    uint32_t bits;
    std::memcpy(&bits, &rounded, sizeof bits);
    r.data<uint16_t>()[i] = static_cast<uint16_t>(bits >> 16);
  }
  return r;
}

// A double-precision expected result and, per element, the sum of |terms| that formed it:
// float32 rounding error grows with that sum, whatever cancellation leaves in the value.
struct Expected {
  explicit Expected(int64_t n)
      : value(static_cast<size_t>(n), 0.0), scale(static_cast<size_t>(n), 0.0) {}
  // Each element its own scale: for results that are single rounded operations.
  explicit Expected(std::vector<double> values) : value(std::move(values)) {
    scale.resize(value.size());
    for (size_t i = 0; i < value.size(); ++i) scale[i] = std::abs(value[i]);
  }
  void add(int64_t i, double term) {
    value[static_cast<size_t>(i)] += term;
    scale[static_cast<size_t>(i)] += std::abs(term);
  }
  std::vector<double> value, scale;
};

struct Tolerance {
  double rel = 1e-5;  // of the element's scale; float32 epsilon is 1.2e-7
  double abs = 1e-7;  // for elements whose terms are all (near) zero
};
// For copies: the op must reproduce every bit.
constexpr Tolerance kExact{0.0, 0.0};

inline std::string index_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.rank());
  for (size_t d = shape.rank(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::ostringstream out;
  out << "[";
  for (size_t d = 0; d < idx.size(); ++d) out << (d ? ", " : "") << idx[d];
  out << "]";
  return out.str();
}

// A float32 host tensor of t's values (a bf16 tensor widened exactly).
inline Tensor float32_values(const Tensor& t) {
  if (t.dtype() != DType::kBFloat16) return host_copy(t);
  const std::vector<double> values = to_double(t);
  Tensor r = Tensor::empty(t.shape());
  for (int64_t i = 0; i < r.numel(); ++i) r.f32()[i] = static_cast<float>(values[static_cast<size_t>(i)]);
  return r;
}

// Passes when |got - want| <= rel * scale + abs for every element (NaN never passes);
// otherwise names the count of bad elements and the worst one (largest error / tolerance).
// A result on another device is copied to the host first; a bf16 one is read widened.
inline ::testing::AssertionResult matches(const Tensor& got_any, const Expected& want,
                                          Tolerance tol = {}) {
  const Tensor got = float32_values(got_any);
  if (static_cast<size_t>(got.numel()) != want.value.size()) {
    return ::testing::AssertionFailure() << "got " << got.numel() << " elements ("
                                         << got.shape().str() << "), want " << want.value.size();
  }
  int64_t bad = 0, worst = -1;
  double worst_ratio = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.f32()[i], w = want.value[static_cast<size_t>(i)];
    const double limit = tol.rel * want.scale[static_cast<size_t>(i)] + tol.abs;
    const double err = std::abs(g - w);
    if (err <= limit) continue;  // false for NaN
    ++bad;
    const double ratio = std::isnan(err) ? std::numeric_limits<double>::infinity()
                                         : (limit > 0 ? err / limit
                                                      : std::numeric_limits<double>::max());
    if (worst < 0 || ratio > worst_ratio) {
      worst = i;
      worst_ratio = ratio;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  const size_t at = static_cast<size_t>(worst);
  std::ostringstream out;
  out.precision(9);
  out << bad << " of " << got.numel() << " elements off; worst at " << worst
      << index_str(got.shape(), worst) << ": got " << got.f32()[worst] << ", want "
      << want.value[at] << ", |diff| " << std::abs(got.f32()[worst] - want.value[at])
      << " > tolerance " << tol.rel * want.scale[at] + tol.abs << " (scale "
      << want.scale[at] << ")";
  return ::testing::AssertionFailure() << out.str();
}

// Scalar version for values an op returns (losses).
inline ::testing::AssertionResult matches(double got, double want, double scale,
                                          Tolerance tol = {}) {
  const double limit = tol.rel * scale + tol.abs;
  if (std::abs(got - want) <= limit) return ::testing::AssertionSuccess();
  std::ostringstream out;
  out.precision(12);
  out << "got " << got << ", want " << want << ", |diff| " << std::abs(got - want)
      << " > tolerance " << limit;
  return ::testing::AssertionFailure() << out.str();
}

}  // namespace residual::ref
