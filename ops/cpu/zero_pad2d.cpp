// Spatial zero padding (ZeroPadding2D) and the option-A shortcut (spatial subsampling
// with zero channels around), both over N x H x W x C.
#include <cstring>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/element_access.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {
namespace {

// The shortcut between dtypes (a float32 input whose output is read as bf16, or the
// reverse), element by element through float.
void shortcut_pad_converting(int64_t stride, int64_t pad_before, const Tensor& x, Tensor& y) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const int64_t oh = y.dim(1), ow = y.dim(2), oc = y.dim(3);
  with_reader(x, "shortcut_pad_forward", [&](auto xp) {
    with_writer(y, "shortcut_pad_forward", [&](auto yw) {
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t i = 0; i < oh; ++i) {
          for (int64_t j = 0; j < ow; ++j) {
            const int64_t o = ((b * oh + i) * ow + j) * oc;
            const int64_t s = ((b * h + i * stride) * w + j * stride) * c;
            for (int64_t k = 0; k < oc; ++k) {
              const int64_t from = k - pad_before;
              yw.set(o + k, from >= 0 && from < c ? xp[s + from] : 0.f);
            }
          }
        }
      }
    });
  });
}

}  // namespace

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
  if (x.dtype() != y.dtype()) {
    shortcut_pad_converting(stride, pad_before, x, y);
    return;
  }
  // The same dtype (float32, or bf16 activations under mixed precision): bytes moved.
  const size_t size = dtype_size(x.dtype());
  const auto* xp = static_cast<const char*>(x.raw());
  auto* yp = static_cast<char*>(y.raw());
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        char* o = yp + ((b * oh + i) * ow + j) * oc * size;
        const char* s = xp + ((b * h + i * stride) * w + j * stride) * c * size;
        std::memset(o, 0, size * pad_before);
        std::memcpy(o + pad_before * size, s, size * c);
        std::memset(o + (pad_before + c) * size, 0, size * pad_after);
      }
    }
  }
}

void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after,
                           const Tensor& dy, Tensor& dx) {
  const int64_t n = dx.dim(0), h = dx.dim(1), w = dx.dim(2), c = dx.dim(3);
  const int64_t oh = dy.dim(1), ow = dy.dim(2), oc = c + pad_before + pad_after;
  dx.zero();
  if (dy.dtype() != dx.dtype()) {
    with_reader(dy, "shortcut_pad_backward", [&](auto g) {
      with_writer(dx, "shortcut_pad_backward", [&](auto out) {
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
        for (int64_t b = 0; b < n; ++b) {
          for (int64_t i = 0; i < oh; ++i) {
            for (int64_t j = 0; j < ow; ++j) {
              const int64_t to = ((b * h + i * stride) * w + j * stride) * c;
              const int64_t from = ((b * oh + i) * ow + j) * oc + pad_before;
              for (int64_t k = 0; k < c; ++k) out.set(to + k, g[from + k]);
            }
          }
        }
      });
    });
    return;
  }
  // The same dtype (float32, or bf16 gradients under mixed precision): bytes moved.
  const size_t size = dtype_size(dy.dtype());
  const auto* g = static_cast<const char*>(dy.raw());
  auto* out = static_cast<char*>(dx.raw());
#pragma omp parallel for collapse(2) schedule(static) if (n * c * 256 >= kMinParallelElements)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        std::memcpy(out + ((b * h + i * stride) * w + j * stride) * c * size,
                    g + (((b * oh + i) * ow + j) * oc + pad_before) * size, size * c);
      }
    }
  }
}

}  // namespace residual::ops::cpu
