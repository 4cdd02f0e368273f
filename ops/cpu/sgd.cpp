// The SGD update (momentum, Nesterov, weight decay), one fused pass per parameter.
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

void sgd_step(const SgdConfig& c, Tensor& param, const Tensor& grad, Tensor& velocity) {
  const int64_t n = param.numel();
  float* p = param.f32();
  const float* g = grad.f32();
  float* v = velocity.f32();
  const float lr = c.lr, mu = c.momentum, wd = c.weight_decay;
  const bool nesterov = c.nesterov;
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + wd * p[i];
    v[i] = mu * v[i] + gi;
    p[i] -= lr * (nesterov ? gi + mu * v[i] : v[i]);
  }
}

}  // namespace residual::ops::cpu
