// Losses with their gradient in one pass: softmax cross-entropy (label smoothing) and
// sigmoid binary cross-entropy. Per-sample losses accumulate in double in sample order.
// An empty batch (a rank's empty shard) has loss 0 and writes no gradient.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

double softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                             float label_smoothing, Tensor& dlogits, double grad_scale) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const float* z = logits.f32();
  const int32_t* y = labels.data<int32_t>();
  float* d = dlogits.f32();
  if (n == 0) return 0;
  if (grad_scale == 0) grad_scale = 1.0 / n;
  for (int64_t i = 0; i < n; ++i) {
    RESIDUAL_CHECK(y[i] >= 0 && y[i] < k, "label ", y[i], " of sample ", i,
                   " is out of range for ", k, " classes");
  }
  const double off = label_smoothing / k, on = 1.0 - label_smoothing + off;
  std::vector<double> losses(n);
#pragma omp parallel for schedule(static) if (n * k >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * k;
    float* di = d + i * k;
    const float top = *std::max_element(zi, zi + k);
    double total = 0, weighted = 0;
    for (int64_t j = 0; j < k; ++j) {
      total += std::exp(static_cast<double>(zi[j] - top));
      weighted += (j == y[i] ? on : off) * (zi[j] - top);
    }
    losses[i] = std::log(total) - weighted;
    for (int64_t j = 0; j < k; ++j) {
      const double p = std::exp(static_cast<double>(zi[j] - top)) / total;
      di[j] = static_cast<float>((p - (j == y[i] ? on : off)) * grad_scale);
    }
  }
  double sum = 0;
  for (double l : losses) sum += l;
  return sum / n;
}

double sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& targets,
                                    Tensor& dlogits, double grad_scale) {
  const int64_t n = logits.dim(0), count = logits.numel();
  const float* z = logits.f32();
  const float* t = targets.f32();
  float* d = dlogits.f32();
  if (count == 0) return 0;
  if (grad_scale == 0) grad_scale = 1.0 / count;
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double zi = z[i];
    sum += std::max(zi, 0.0) - zi * t[i] + std::log1p(std::exp(-std::abs(zi)));
    d[i] = static_cast<float>((1.0 / (1.0 + std::exp(-zi)) - t[i]) * grad_scale);
  }
  (void)n;
  return sum / count;
}

}  // namespace residual::ops::cpu
