// Elementwise activations (and softmax over the last dimension), OpenMP + SIMD loops.
#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {
namespace {

void softmax_rows(const float* x, float* y, int64_t rows, int64_t k) {
  parallel_ranges(rows, rows * k, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * k;
      float* yr = y + r * k;
      const float top = *std::max_element(xr, xr + k);
      double total = 0;
      for (int64_t i = 0; i < k; ++i) total += (yr[i] = std::exp(xr[i] - top));
      const float inv = static_cast<float>(1.0 / total);
      for (int64_t i = 0; i < k; ++i) yr[i] *= inv;
    }
  });
}

}  // namespace

void activation_forward(Activation kind, const Tensor& x, Tensor& y) {
  const float* xp = x.f32();
  float* yp = y.f32();
  const int64_t n = x.numel();
  // Plain loops with branch-free bodies: `v > 0 ? v : 0` compiles to vmaxps, where
  // std::fmax's NaN rules and data-dependent branches would not vectorise.
  switch (kind) {
    case Activation::kLinear:
      if (xp != yp) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
        for (int64_t i = 0; i < n; ++i) yp[i] = xp[i];
      }
      break;
    case Activation::kRelu:
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] > 0.f ? xp[i] : 0.f;
      break;
    case Activation::kSigmoid:
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
      for (int64_t i = 0; i < n; ++i) yp[i] = 1.f / (1.f + std::exp(-xp[i]));
      break;
    case Activation::kSoftmax: {
      const int64_t k = x.shape()[x.rank() - 1];
      softmax_rows(xp, yp, n / k, k);
      break;
    }
  }
}

void activation_backward(Activation kind, const Tensor& y, const Tensor& dy, Tensor& dx) {
  const float* yp = y.f32();
  const float* g = dy.f32();
  float* out = dx.f32();
  const int64_t n = y.numel();
  switch (kind) {
    case Activation::kLinear:
      if (g != out) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
        for (int64_t i = 0; i < n; ++i) out[i] = g[i];
      }
      break;
    case Activation::kRelu:
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
      for (int64_t i = 0; i < n; ++i) out[i] = yp[i] > 0.f ? g[i] : 0.f;
      break;
    case Activation::kSigmoid:
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
      for (int64_t i = 0; i < n; ++i) out[i] = g[i] * yp[i] * (1.f - yp[i]);
      break;
    case Activation::kSoftmax: {
      const int64_t k = y.shape()[y.rank() - 1];
      parallel_ranges(n / k, n, [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
          double dot = 0;
          for (int64_t i = 0; i < k; ++i) dot += static_cast<double>(g[r * k + i]) * yp[r * k + i];
          for (int64_t i = 0; i < k; ++i) {
            out[r * k + i] = static_cast<float>(yp[r * k + i] * (g[r * k + i] - dot));
          }
        }
      });
      break;
    }
  }
}

}  // namespace residual::ops::cpu
