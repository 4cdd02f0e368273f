// Adam and AdamW on a GPU, one fused pass per parameter (or over a list of parameters:
// adam_step_multi, ops/cuda/multi_tensor.h). The step's constants (bias corrections,
// step size, decay factors) are computed on the host exactly as the CPU twin
// (ops/cpu/adam.cpp) computes them, and the element-wise arithmetic is the same float
// expressions, so GPU and CPU agree to rounding.
#include <array>
#include <cmath>
#include <vector>

#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/multi_tensor.cuh"

namespace residual::ops::gpu {
namespace {

// arrays: param, grad, m, v.
struct AdamUpdate {
  float b1, b2, one_minus_b1, one_minus_b2, eps, step_size, inv_sqrt_bias2, l2, shrink;

  __device__ __forceinline__ void operator()(float* const* arrays, int64_t i) const {
    float& p = arrays[0][i];
    const float g = arrays[1][i] + l2 * p;
    float& m = arrays[2][i];
    float& v = arrays[3][i];
    m = b1 * m + one_minus_b1 * g;
    v = b2 * v + one_minus_b2 * g * g;
    p = p * shrink - step_size * m / (sqrtf(v) * inv_sqrt_bias2 + eps);
  }
};

AdamUpdate update_for(const AdamConfig& c, int64_t step) {
  AdamUpdate u{};
  u.b1 = c.beta1;
  u.b2 = c.beta2;
  u.one_minus_b1 = 1.f - c.beta1;
  u.one_minus_b2 = 1.f - c.beta2;
  u.eps = c.epsilon;
  const float bias1 =
      1.f - static_cast<float>(std::pow(static_cast<double>(c.beta1), static_cast<double>(step)));
  const float bias2 =
      1.f - static_cast<float>(std::pow(static_cast<double>(c.beta2), static_cast<double>(step)));
  u.step_size = c.lr / bias1;
  u.inv_sqrt_bias2 = 1.f / std::sqrt(bias2);
  u.l2 = c.decoupled ? 0.f : c.weight_decay;
  u.shrink = c.decoupled ? 1.f - c.lr * c.weight_decay : 1.f;
  return u;
}

}  // namespace

void adam_step(const AdamConfig& c, int64_t step, Tensor& param, const Tensor& grad, Tensor& m,
               Tensor& v) {
  apply_to_tensors<4>("adam_step", {{&param, &grad, &m, &v}}, update_for(c, step));
}

void adam_step_multi(const AdamConfig& c, int64_t step, const std::vector<AdamSlot>& slots) {
  std::vector<std::array<const Tensor*, 4>> arrays;
  arrays.reserve(slots.size());
  for (const AdamSlot& s : slots) arrays.push_back({s.param, s.grad, s.m, s.v});
  apply_to_tensors<4>("adam_step_multi", arrays, update_for(c, step));
}

}  // namespace residual::ops::gpu
