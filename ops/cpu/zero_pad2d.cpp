// Spatial zero padding (ZeroPadding2D) and the option-A shortcut (spatial subsampling
// with zero channels around), both over N x H x W x C.
#include <cstring>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

void zero_pad2d_forward(const Padding2d& p, const Tensor& x, Tensor& y) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const int64_t oh = y.dim(1), ow = y.dim(2);
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < oh; ++i) {
      float* row = yp + ((b * oh + i) * ow) * c;
      const int64_t src_i = i - p.top;
      if (src_i < 0 || src_i >= h) {
        std::memset(row, 0, sizeof(float) * ow * c);
        continue;
      }
      std::memset(row, 0, sizeof(float) * p.left * c);
      std::memcpy(row + p.left * c, xp + ((b * h + src_i) * w) * c, sizeof(float) * w * c);
      std::memset(row + (p.left + w) * c, 0, sizeof(float) * p.right * c);
    }
  }
}

void zero_pad2d_backward(const Padding2d& p, const Tensor& dy, Tensor& dx) {
  const int64_t n = dx.dim(0), h = dx.dim(1), w = dx.dim(2), c = dx.dim(3);
  const int64_t oh = dy.dim(1), ow = dy.dim(2);
  const float* g = dy.f32();
  float* out = dx.f32();
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < h; ++i) {
      std::memcpy(out + ((b * h + i) * w) * c, g + ((b * oh + i + p.top) * ow + p.left) * c,
                  sizeof(float) * w * c);
    }
  }
}

void shortcut_pad_forward(int64_t stride, int64_t pad_before, int64_t pad_after,
                          const Tensor& x, Tensor& y) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const int64_t oh = y.dim(1), ow = y.dim(2), oc = c + pad_before + pad_after;
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        float* o = yp + ((b * oh + i) * ow + j) * oc;
        const float* s = xp + ((b * h + i * stride) * w + j * stride) * c;
        std::memset(o, 0, sizeof(float) * pad_before);
        std::memcpy(o + pad_before, s, sizeof(float) * c);
        std::memset(o + pad_before + c, 0, sizeof(float) * pad_after);
      }
    }
  }
}

void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after,
                           const Tensor& dy, Tensor& dx) {
  const int64_t n = dx.dim(0), h = dx.dim(1), w = dx.dim(2), c = dx.dim(3);
  const int64_t oh = dy.dim(1), ow = dy.dim(2), oc = c + pad_before + pad_after;
  const float* g = dy.f32();
  float* out = dx.f32();
  dx.zero();
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        std::memcpy(out + ((b * h + i * stride) * w + j * stride) * c,
                    g + ((b * oh + i) * ow + j) * oc + pad_before, sizeof(float) * c);
      }
    }
  }
}

}  // namespace residual::ops::cpu
