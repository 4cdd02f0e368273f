// Spatial zero padding (ZeroPadding2D) and the option-A shortcut (spatial subsampling
// with zero channels around) on the GPU, over N x H x W x C. Each kernel writes every
// element of its output once, padding included, so no memset precedes it and the
// backward of the shortcut (zeros off the subsampled grid) needs no second pass.
#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

// The dimensions of an N x H x W x C tensor.
struct Nhwc {
  int64_t n, h, w, c;
  __host__ __device__ int64_t numel() const { return n * h * w * c; }
};

Nhwc dims_of(const Tensor& t, const char* op) {
  RESIDUAL_CHECK(t.rank() == 4, op, ": expected N x H x W x C, got ", t.shape().str());
  return {t.dim(0), t.dim(1), t.dim(2), t.dim(3)};
}

// Every kernel here: (source dims, destination dims, two geometry numbers, source,
// destination), one thread per destination element.
__global__ void zero_pad2d_forward_kernel(Nhwc x, Nhwc y, int64_t top, int64_t left,
                                          const float* __restrict__ xp, float* __restrict__ yp) {
  const int64_t count = y.numel();
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, i, j, ch] = cuda::unravel4(e, y.h, y.w, y.c);
    const int64_t si = i - top, sj = j - left;
    yp[e] = si >= 0 && si < x.h && sj >= 0 && sj < x.w ? xp[((b * x.h + si) * x.w + sj) * x.c + ch]
                                                       : 0.f;
  }
}

__global__ void zero_pad2d_backward_kernel(Nhwc dy, Nhwc dx, int64_t top, int64_t left,
                                           const float* __restrict__ g, float* __restrict__ out) {
  const int64_t count = dx.numel();
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, i, j, ch] = cuda::unravel4(e, dx.h, dx.w, dx.c);
    out[e] = g[((b * dy.h + i + top) * dy.w + j + left) * dy.c + ch];
  }
}

// y[b, i, j, pad_before + ch] = x[b, i * stride, j * stride, ch]; the other channels 0.
__global__ void shortcut_pad_forward_kernel(Nhwc x, Nhwc y, int64_t stride, int64_t pad_before,
                                            const float* __restrict__ xp, float* __restrict__ yp) {
  const int64_t count = y.numel();
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, i, j, oc] = cuda::unravel4(e, y.h, y.w, y.c);
    const int64_t ch = oc - pad_before;
    yp[e] = ch >= 0 && ch < x.c ? xp[((b * x.h + i * stride) * x.w + j * stride) * x.c + ch] : 0.f;
  }
}

// The gather of the forward: dx is dy's channel band on the subsampled grid, 0 elsewhere.
__global__ void shortcut_pad_backward_kernel(Nhwc dy, Nhwc dx, int64_t stride, int64_t pad_before,
                                             const float* __restrict__ g, float* __restrict__ out) {
  const int64_t count = dx.numel();
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, i, j, ch] = cuda::unravel4(e, dx.h, dx.w, dx.c);
    const int64_t oi = i / stride, oj = j / stride;
    const bool on_grid = oi * stride == i && oj * stride == j && oi < dy.h && oj < dy.w;
    out[e] = on_grid ? g[((b * dy.h + oi) * dy.w + oj) * dy.c + pad_before + ch] : 0.f;
  }
}

using Kernel = void (*)(Nhwc, Nhwc, int64_t, int64_t, const float*, float*);

// Runs `kernel` over every element of `to`, on the GPU and compute stream of `from`.
void launch(Kernel kernel, const char* name, const Tensor& from, const Nhwc& from_dims, Tensor& to,
            const Nhwc& to_dims, int64_t a, int64_t b) {
  if (to_dims.numel() == 0) return;
  cuda::DeviceGuard guard(from.device().index);
  kernel<<<cuda::grid_for(to_dims.numel()), cuda::kThreadsPerBlock, 0, cuda::stream_of(from)>>>(
      from_dims, to_dims, a, b, from.device_f32(), to.device_f32());
  cuda::check_launch(name);
}

// Whether `padded` is `inner` with p's rows and columns around it.
bool is_padded(const Nhwc& padded, const Nhwc& inner, const Padding2d& p) {
  return padded.n == inner.n && padded.c == inner.c && padded.h == inner.h + p.top + p.bottom &&
         padded.w == inner.w + p.left + p.right;
}

void check_shortcut_args(const char* op, int64_t stride, int64_t pad_before, int64_t pad_after) {
  RESIDUAL_CHECK(stride >= 1 && pad_before >= 0 && pad_after >= 0, op, ": stride ", stride,
                 " and pads ", pad_before, " / ", pad_after, " must be >= 1 and >= 0");
}

// Whether `outer` is `inner` subsampled at `stride` with the channel pads around it.
bool is_shortcut_of(const Nhwc& outer, const Nhwc& inner, int64_t stride, int64_t pad_before,
                    int64_t pad_after) {
  return outer.n == inner.n && outer.c == inner.c + pad_before + pad_after &&
         outer.h == (inner.h + stride - 1) / stride && outer.w == (inner.w + stride - 1) / stride;
}

}  // namespace

void zero_pad2d_forward(const Padding2d& p, const Tensor& x, Tensor& y) {
  const Nhwc xd = dims_of(x, "zero_pad2d_forward"), yd = dims_of(y, "zero_pad2d_forward");
  RESIDUAL_CHECK(is_padded(yd, xd, p), "zero_pad2d_forward: output ", y.shape().str(),
                 " is not input ", x.shape().str(), " padded");
  launch(zero_pad2d_forward_kernel, "zero_pad2d_forward", x, xd, y, yd, p.top, p.left);
}

void zero_pad2d_backward(const Padding2d& p, const Tensor& dy, Tensor& dx) {
  const Nhwc gd = dims_of(dy, "zero_pad2d_backward"), xd = dims_of(dx, "zero_pad2d_backward");
  RESIDUAL_CHECK(is_padded(gd, xd, p), "zero_pad2d_backward: gradient ", dy.shape().str(),
                 " is not ", dx.shape().str(), " padded");
  launch(zero_pad2d_backward_kernel, "zero_pad2d_backward", dy, gd, dx, xd, p.top, p.left);
}

void shortcut_pad_forward(int64_t stride, int64_t pad_before, int64_t pad_after, const Tensor& x,
                          Tensor& y) {
  const Nhwc xd = dims_of(x, "shortcut_pad_forward"), yd = dims_of(y, "shortcut_pad_forward");
  check_shortcut_args("shortcut_pad_forward", stride, pad_before, pad_after);
  RESIDUAL_CHECK(is_shortcut_of(yd, xd, stride, pad_before, pad_after),
                 "shortcut_pad_forward: output ", y.shape().str(), " does not match input ",
                 x.shape().str(), " at stride ", stride);
  launch(shortcut_pad_forward_kernel, "shortcut_pad_forward", x, xd, y, yd, stride, pad_before);
}

void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after, const Tensor& dy,
                           Tensor& dx) {
  const Nhwc gd = dims_of(dy, "shortcut_pad_backward"), xd = dims_of(dx, "shortcut_pad_backward");
  check_shortcut_args("shortcut_pad_backward", stride, pad_before, pad_after);
  RESIDUAL_CHECK(is_shortcut_of(gd, xd, stride, pad_before, pad_after),
                 "shortcut_pad_backward: gradient ", dy.shape().str(), " does not match ",
                 dx.shape().str(), " at stride ", stride);
  launch(shortcut_pad_backward_kernel, "shortcut_pad_backward", dy, gd, dx, xd, stride, pad_before);
}

}  // namespace residual::ops::gpu
