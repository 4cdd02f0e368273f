// Elementwise activations (and softmax over the last dimension), OpenMP + SIMD loops.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/element_access.h"
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

// ReLU's backward where y, dy or dx is bf16 (an Add's fused ReLU under mixed precision,
// whose activation and gradient may be bf16): the mask is y > 0 on the exactly widened y.
void relu_backward_any_dtype(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t n = y.numel();
  const auto bf16 = DType::kBFloat16;
  if (y.dtype() == bf16 && dy.dtype() == bf16 && dx.dtype() == bf16 && y.device().is_cpu() &&
      dy.device().is_cpu() && dx.device().is_cpu()) {
    // All bf16: a masked bf16 value needs no rounding, so the mask works on the bits. y > 0
    // exactly when its bits, read as int16, lie in (0, 0x7f80] (sign clear, not zero, not
    // NaN).
    const int16_t* yp = y.data<int16_t>();
    const uint16_t* g = dy.data<uint16_t>();
    uint16_t* out = dx.data<uint16_t>();
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t d = g[i];  // loaded unconditionally, so the select is branch-free
      out[i] = yp[i] > 0 && yp[i] <= 0x7f80 ? d : uint16_t{0};
    }
    return;
  }
  with_reader(y, "activation_backward", [&](const auto yp) {
    with_reader(dy, "activation_backward", [&](const auto g) {
      with_writer(dx, "activation_backward", [&](const auto out) {
        // Per-thread copies of the accessors: a loop storing through a captured reference
        // must reload the pointers after every store and does not vectorise.
        parallel_ranges(n, n, [yp, g, out](int64_t begin, int64_t end, int) {
#pragma omp simd
          for (int64_t i = begin; i < end; ++i) {
            const float d = g[i];  // loaded unconditionally, so the select is branch-free
            out.set(i, yp[i] > 0.f ? d : 0.f);
          }
        });
      });
    });
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
  const auto bf16 = DType::kBFloat16;
  if (kind == Activation::kRelu &&
      (y.dtype() == bf16 || dy.dtype() == bf16 || dx.dtype() == bf16)) {
    relu_backward_any_dtype(y, dy, dx);
    return;
  }
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
      for (int64_t i = 0; i < n; ++i) {
        const float d = g[i];  // loaded unconditionally: a conditional load stays scalar
        out[i] = yp[i] > 0.f ? d : 0.f;
      }
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
