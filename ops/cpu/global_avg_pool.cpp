// Mean over H x W per sample and channel: N x H x W x C -> N x C.
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/element_access.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

// x may also be bfloat16 (a bf16 activation under mixed precision); y is float32.
void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  const int64_t n = x.dim(0), c = x.shape()[x.rank() - 1], pixels = x.dim(1) * x.dim(2);
  float* yp = y.f32();
  const float inv = 1.f / static_cast<float>(pixels);
  with_reader(x, "global_avg_pool_forward", [&](auto xp) {
#pragma omp parallel for schedule(static) if (x.numel() >= kMinParallelElements)
    for (int64_t b = 0; b < n; ++b) {
      float* yr = yp + b * c;
      for (int64_t i = 0; i < c; ++i) yr[i] = 0.f;
      for (int64_t p = 0; p < pixels; ++p) {
        const int64_t row = (b * pixels + p) * c;
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) yr[i] += xp[row + i];
      }
      for (int64_t i = 0; i < c; ++i) yr[i] *= inv;
    }
  });
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  const int64_t n = dx.dim(0), c = dx.shape()[dx.rank() - 1], pixels = dx.dim(1) * dx.dim(2);
  const float* g = dy.f32();
  const float inv = 1.f / static_cast<float>(pixels);
  with_writer(dx, "global_avg_pool_backward", [&](auto out) {
#pragma omp parallel for schedule(static) if (dx.numel() >= kMinParallelElements)
    for (int64_t r = 0; r < n * pixels; ++r) {
      const float* gr = g + (r / pixels) * c;
#pragma omp simd
      for (int64_t i = 0; i < c; ++i) out.set(r * c + i, gr[i] * inv);
    }
  });
}

}  // namespace residual::ops::cpu
