// Whole-tensor reductions and scaling (gradient norms for clipping and finiteness).
#include <vector>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

double squared_norm(const Tensor& x) {
  const float* p = x.f32();
  std::vector<double> partial(static_cast<size_t>(max_threads()), 0.0);
  parallel_ranges(x.numel(), x.numel(), [&](int64_t begin, int64_t end, int t) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = begin; i < end; ++i) sum += static_cast<double>(p[i]) * p[i];
    partial[t] = sum;
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

void scale_inplace(Tensor& x, float factor) {
  const int64_t n = x.numel();
  float* p = x.f32();
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) p[i] *= factor;
}

}  // namespace residual::ops::cpu
