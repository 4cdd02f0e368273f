// y[n, h, w, c] = x[n, h, w, c] * s[n, c]: the excitation of squeeze-and-excitation.
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y) {
  const int64_t n = x.dim(0), c = x.shape()[x.rank() - 1], pixels = x.dim(1) * x.dim(2);
  const float* xp = x.f32();
  const float* sp = s.f32();
  float* yp = y.f32();
  parallel_ranges(n * pixels, n * pixels * c, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* sr = sp + (r / pixels) * c;
#pragma omp simd
      for (int64_t i = 0; i < c; ++i) yp[r * c + i] = xp[r * c + i] * sr[i];
    }
  });
}

void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx,
                            Tensor* ds) {
  const int64_t n = x.dim(0), c = x.shape()[x.rank() - 1], pixels = x.dim(1) * x.dim(2);
  const float* xp = x.f32();
  const float* sp = s.f32();
  const float* g = dy.f32();
  // One sample per task: ds[b, :] sums over that sample's pixels only.
#pragma omp parallel for schedule(static) if (x.numel() >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    const float* sr = sp + b * c;
    if (ds) {
      float* dsr = ds->f32() + b * c;
      for (int64_t i = 0; i < c; ++i) dsr[i] = 0.f;
      for (int64_t p = 0; p < pixels; ++p) {
        const int64_t o = (b * pixels + p) * c;
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) dsr[i] += g[o + i] * xp[o + i];
      }
    }
    if (dx) {
      float* dxp = dx->f32();
      for (int64_t p = 0; p < pixels; ++p) {
        const int64_t o = (b * pixels + p) * c;
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) dxp[o + i] = g[o + i] * sr[i];
      }
    }
  }
}

}  // namespace residual::ops::cpu
