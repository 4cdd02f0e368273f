// Adam and AdamW, one fused pass per parameter.
#include <cmath>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

void adam_step(const AdamConfig& c, int64_t step, Tensor& param, const Tensor& grad, Tensor& m,
               Tensor& v) {
  const int64_t n = param.numel();
  float* p = param.f32();
  const float* g = grad.f32();
  float* mp = m.f32();
  float* vp = v.f32();
  const float b1 = c.beta1, b2 = c.beta2, eps = c.epsilon;
  const float bias1 = 1.f - static_cast<float>(std::pow(static_cast<double>(b1), static_cast<double>(step)));
  const float bias2 = 1.f - static_cast<float>(std::pow(static_cast<double>(b2), static_cast<double>(step)));
  const float step_size = c.lr / bias1;
  const float inv_sqrt_bias2 = 1.f / std::sqrt(bias2);
  const float l2 = c.decoupled ? 0.f : c.weight_decay;
  const float shrink = c.decoupled ? 1.f - c.lr * c.weight_decay : 1.f;
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + l2 * p[i];
    mp[i] = b1 * mp[i] + (1.f - b1) * gi;
    vp[i] = b2 * vp[i] + (1.f - b2) * gi * gi;
    p[i] = p[i] * shrink - step_size * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bias2 + eps);
  }
}

}  // namespace residual::ops::cpu
