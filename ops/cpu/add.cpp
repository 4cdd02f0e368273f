// Sum of same-shaped tensors (the Add layer, residual joins).
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

void add_forward(const std::vector<const Tensor*>& xs, Tensor& y) {
  const int64_t n = y.numel();
  float* out = y.f32();
  const float* a = xs[0]->f32();
  const float* b = xs.size() > 1 ? xs[1]->f32() : nullptr;
  if (b) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
  } else if (out != a) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) out[i] = a[i];
  }
  for (size_t k = 2; k < xs.size(); ++k) {
    const float* c = xs[k]->f32();
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) out[i] += c[i];
  }
}

}  // namespace residual::ops::cpu
