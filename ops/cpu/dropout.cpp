// Inverted dropout with a counter-based mask: keep(i) = hash(seed, i) >= rate, so the
// mask needs no storage, is identical for any thread count and is reproduced on resume.
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"
#include "ops/dropout_mask.h"

namespace residual::ops::cpu {
namespace {

void apply_mask(float rate, uint64_t seed, int64_t first, const float* in, float* out, int64_t n) {
  const float scale = dropout_scale(rate);
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    out[i] = dropout_keep(rate, seed, first + i) ? in[i] * scale : 0.f;
  }
}

}  // namespace

void dropout_forward(float rate, uint64_t seed, const Tensor& x, Tensor& y, int64_t first_element) {
  apply_mask(rate, seed, first_element, x.f32(), y.f32(), x.numel());
}

void dropout_backward(float rate, uint64_t seed, const Tensor& dy, Tensor& dx, int64_t first_element) {
  apply_mask(rate, seed, first_element, dy.f32(), dx.f32(), dy.numel());
}

}  // namespace residual::ops::cpu
