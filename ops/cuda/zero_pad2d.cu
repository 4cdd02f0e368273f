// Spatial zero padding (ZeroPadding2D) and the option-A shortcut (spatial subsampling
// with zero channels around) on the GPU, over N x H x W x C. Each kernel writes every
// element of its output once, padding included, so no memset precedes it and the
// backward of the shortcut (zeros off the subsampled grid) needs no second pass.
#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

// The dimensions of an N x H x W x C tensor, and an element's coordinates from its index.
struct Nhwc {
  int64_t n, h, w, c;
  int64_t numel() const { return n * h * w * c; }
};

Nhwc dims_of(const Tensor& t, const char* op) {
  RESIDUAL_CHECK(t.rank() == 4, op, ": expected N x H x W x C, got ", t.shape().str());
  return {t.dim(0), t.dim(1), t.dim(2), t.dim(3)};
}

#define RESIDUAL_GRID_STRIDE(e, count)                                                       \
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < (count); \
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void zero_pad2d_forward_kernel(Nhwc x, Nhwc y, int64_t top, int64_t left,
                                          const float* __restrict__ xp, float* __restrict__ yp) {
  const int64_t count = y.n * y.h * y.w * y.c;
  RESIDUAL_GRID_STRIDE(e, count) {
    const int64_t ch = e % y.c, pixel = e / y.c;
    const int64_t j = pixel % y.w, row = pixel / y.w;
    const int64_t i = row % y.h, b = row / y.h;
    const int64_t si = i - top, sj = j - left;
    yp[e] = si >= 0 && si < x.h && sj >= 0 && sj < x.w ? xp[((b * x.h + si) * x.w + sj) * x.c + ch]
                                                       : 0.f;
  }
}

__global__ void zero_pad2d_backward_kernel(Nhwc dy, Nhwc dx, int64_t top, int64_t left,
                                           const float* __restrict__ g, float* __restrict__ out) {
  const int64_t count = dx.n * dx.h * dx.w * dx.c;
  RESIDUAL_GRID_STRIDE(e, count) {
    const int64_t ch = e % dx.c, pixel = e / dx.c;
    const int64_t j = pixel % dx.w, row = pixel / dx.w;
    const int64_t i = row % dx.h, b = row / dx.h;
    out[e] = g[((b * dy.h + i + top) * dy.w + j + left) * dy.c + ch];
  }
}

// y[b, i, j, pad_before + ch] = x[b, i * stride, j * stride, ch]; the other channels 0.
__global__ void shortcut_pad_forward_kernel(Nhwc x, Nhwc y, int64_t stride, int64_t pad_before,
                                            const float* __restrict__ xp, float* __restrict__ yp) {
  const int64_t count = y.n * y.h * y.w * y.c;
  RESIDUAL_GRID_STRIDE(e, count) {
    const int64_t oc = e % y.c, pixel = e / y.c;
    const int64_t j = pixel % y.w, row = pixel / y.w;
    const int64_t i = row % y.h, b = row / y.h;
    const int64_t ch = oc - pad_before;
    yp[e] = ch >= 0 && ch < x.c ? xp[((b * x.h + i * stride) * x.w + j * stride) * x.c + ch] : 0.f;
  }
}

// The gather of the forward: dx is dy's channel band on the subsampled grid, 0 elsewhere.
__global__ void shortcut_pad_backward_kernel(Nhwc dy, Nhwc dx, int64_t stride, int64_t pad_before,
                                             const float* __restrict__ g, float* __restrict__ out) {
  const int64_t count = dx.n * dx.h * dx.w * dx.c;
  RESIDUAL_GRID_STRIDE(e, count) {
    const int64_t ch = e % dx.c, pixel = e / dx.c;
    const int64_t j = pixel % dx.w, row = pixel / dx.w;
    const int64_t i = row % dx.h, b = row / dx.h;
    const int64_t oi = i / stride, oj = j / stride;
    const bool on_grid = oi * stride == i && oj * stride == j && oi < dy.h && oj < dy.w;
    out[e] = on_grid ? g[((b * dy.h + oi) * dy.w + oj) * dy.c + pad_before + ch] : 0.f;
  }
}

#undef RESIDUAL_GRID_STRIDE

}  // namespace

void zero_pad2d_forward(const Padding2d& p, const Tensor& x, Tensor& y) {
  const Nhwc xd = dims_of(x, "zero_pad2d_forward"), yd = dims_of(y, "zero_pad2d_forward");
  RESIDUAL_CHECK(yd.n == xd.n && yd.c == xd.c && yd.h == xd.h + p.top + p.bottom &&
                     yd.w == xd.w + p.left + p.right,
                 "zero_pad2d_forward: output ", y.shape().str(), " is not input ", x.shape().str(),
                 " padded");
  if (yd.numel() == 0) return;
  cuda::DeviceGuard guard(x.device().index);
  zero_pad2d_forward_kernel<<<cuda::grid_for(yd.numel()), cuda::kThreadsPerBlock, 0,
                              cuda::stream_of(x)>>>(xd, yd, p.top, p.left, x.device_f32(),
                                                    y.device_f32());
  cuda::check_launch("zero_pad2d_forward");
}

void zero_pad2d_backward(const Padding2d& p, const Tensor& dy, Tensor& dx) {
  const Nhwc gd = dims_of(dy, "zero_pad2d_backward"), xd = dims_of(dx, "zero_pad2d_backward");
  RESIDUAL_CHECK(gd.n == xd.n && gd.c == xd.c && gd.h == xd.h + p.top + p.bottom &&
                     gd.w == xd.w + p.left + p.right,
                 "zero_pad2d_backward: gradient ", dy.shape().str(), " is not ", dx.shape().str(),
                 " padded");
  if (xd.numel() == 0) return;
  cuda::DeviceGuard guard(dy.device().index);
  zero_pad2d_backward_kernel<<<cuda::grid_for(xd.numel()), cuda::kThreadsPerBlock, 0,
                               cuda::stream_of(dy)>>>(gd, xd, p.top, p.left, dy.device_f32(),
                                                      dx.device_f32());
  cuda::check_launch("zero_pad2d_backward");
}

void shortcut_pad_forward(int64_t stride, int64_t pad_before, int64_t pad_after, const Tensor& x,
                          Tensor& y) {
  const Nhwc xd = dims_of(x, "shortcut_pad_forward"), yd = dims_of(y, "shortcut_pad_forward");
  RESIDUAL_CHECK(stride >= 1 && pad_before >= 0 && pad_after >= 0, "shortcut_pad_forward: stride ",
                 stride, " and pads ", pad_before, " / ", pad_after, " must be >= 1 and >= 0");
  RESIDUAL_CHECK(yd.n == xd.n && yd.c == xd.c + pad_before + pad_after &&
                     yd.h == (xd.h + stride - 1) / stride && yd.w == (xd.w + stride - 1) / stride,
                 "shortcut_pad_forward: output ", y.shape().str(), " does not match input ",
                 x.shape().str(), " at stride ", stride);
  if (yd.numel() == 0) return;
  cuda::DeviceGuard guard(x.device().index);
  shortcut_pad_forward_kernel<<<cuda::grid_for(yd.numel()), cuda::kThreadsPerBlock, 0,
                                cuda::stream_of(x)>>>(xd, yd, stride, pad_before, x.device_f32(),
                                                      y.device_f32());
  cuda::check_launch("shortcut_pad_forward");
}

void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after, const Tensor& dy,
                           Tensor& dx) {
  const Nhwc gd = dims_of(dy, "shortcut_pad_backward"), xd = dims_of(dx, "shortcut_pad_backward");
  RESIDUAL_CHECK(stride >= 1 && pad_before >= 0 && pad_after >= 0, "shortcut_pad_backward: stride ",
                 stride, " and pads ", pad_before, " / ", pad_after, " must be >= 1 and >= 0");
  RESIDUAL_CHECK(gd.n == xd.n && gd.c == xd.c + pad_before + pad_after &&
                     gd.h == (xd.h + stride - 1) / stride && gd.w == (xd.w + stride - 1) / stride,
                 "shortcut_pad_backward: gradient ", dy.shape().str(), " does not match ",
                 dx.shape().str(), " at stride ", stride);
  if (xd.numel() == 0) return;
  cuda::DeviceGuard guard(dy.device().index);
  shortcut_pad_backward_kernel<<<cuda::grid_for(xd.numel()), cuda::kThreadsPerBlock, 0,
                                 cuda::stream_of(dy)>>>(gd, xd, stride, pad_before, dy.device_f32(),
                                                        dx.device_f32());
  cuda::check_launch("shortcut_pad_backward");
}

}  // namespace residual::ops::gpu
