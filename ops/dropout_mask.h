#pragma once
// Dropout's mask, shared by the CPU kernel and the CUDA kernel (host and device code): one
// definition, so every backend drops exactly the same elements for a (seed, index).
#include <cstdint>

#include "core/hash.h"

namespace residual::ops {

// Uniform in [0, 1) with 24 random bits: exact in float (a 24-bit integer times a power
// of two), so host and device get the same value bit for bit.
RESIDUAL_HOST_DEVICE inline float dropout_uniform(uint64_t seed, int64_t i) {
  return static_cast<float>(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i))) >> 40) *
         (1.f / 16777216.f);
}

// Whether element `i` (of the whole global batch) survives dropout at `rate`.
RESIDUAL_HOST_DEVICE inline bool dropout_keep(float rate, uint64_t seed, int64_t i) {
  return dropout_uniform(seed, i) >= rate;
}

// The factor applied to kept elements (0 at rate 1, where nothing is kept anyway).
RESIDUAL_HOST_DEVICE inline float dropout_scale(float rate) {
  return rate < 1.f ? 1.f / (1.f - rate) : 0.f;
}

}  // namespace residual::ops
