// Max and average pooling on the GPU over N x H x W x C; average excludes the padding
// from the divisor (Keras). One thread per output element in the forward; neighbouring
// threads take neighbouring channels, so every load and store is coalesced.
//
// The max forward records, per output, the position of its argmax inside the window
// (uint8 when the window has at most 256 positions, else int32) in the caller's
// workspace, laid out like y. The backward is a gather, one thread per input element:
// it sums, in a fixed window order, the gradients of the windows that contain it (max:
// only those whose argmax it is). Overlapping windows (3 x 3, stride 2) thus need no
// atomics, and dx is the same bits run to run.
#include <cfloat>
#include <cstdint>

#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

// Geometry in kernel form: window sizes, strides and pads are small, so int.
struct Geometry {
  int64_t batch, in_h, in_w, c, out_h, out_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
};

// The window of an output (oh, ow), clipped to the input: rows [h0 + kh_begin, h0 + kh_end).
struct Window {
  int64_t h0, w0;
  int kh_begin, kh_end, kw_begin, kw_end;
};

__device__ inline Window window_of(const Geometry& g, int64_t oh, int64_t ow) {
  Window win;
  win.h0 = oh * g.stride_h - g.pad_top;
  win.w0 = ow * g.stride_w - g.pad_left;
  win.kh_begin = win.h0 < 0 ? static_cast<int>(-win.h0) : 0;
  win.kw_begin = win.w0 < 0 ? static_cast<int>(-win.w0) : 0;
  win.kh_end = static_cast<int>(min(static_cast<int64_t>(g.kernel_h), g.in_h - win.h0));
  win.kw_end = static_cast<int>(min(static_cast<int64_t>(g.kernel_w), g.in_w - win.w0));
  return win;
}

// Elements of the window inside the input: the average's divisor (padding excluded).
__device__ inline int window_count(const Window& win) {
  return (win.kh_end - win.kh_begin) * (win.kw_end - win.kw_begin);
}

template <typename Index>
__global__ void max_forward_kernel(Geometry g, const float* __restrict__ x, float* __restrict__ y,
                                   Index* __restrict__ argmax) {
  const int64_t count = g.batch * g.out_h * g.out_w * g.c;
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, oh, ow, ch] = cuda::unravel4(e, g.out_h, g.out_w, g.c);
    const Window win = window_of(g, oh, ow);
    // As oneDNN's reference: start below every finite value, keep the first of equal
    // maxima (strict >), and so never pick a NaN; the host checked that no window lies
    // wholly in the padding, so the first element always seeds the index.
    float best = -FLT_MAX;
    int best_pos = win.kh_begin * g.kernel_w + win.kw_begin;
    for (int kh = win.kh_begin; kh < win.kh_end; ++kh) {
      const float* xr = x + ((b * g.in_h + win.h0 + kh) * g.in_w + win.w0) * g.c + ch;
      for (int kw = win.kw_begin; kw < win.kw_end; ++kw) {
        const float v = xr[kw * g.c];
        if (v > best) {
          best = v;
          best_pos = kh * g.kernel_w + kw;
        }
      }
    }
    y[e] = best;
    if (argmax) argmax[e] = static_cast<Index>(best_pos);
  }
}

__global__ void average_forward_kernel(Geometry g, const float* __restrict__ x,
                                       float* __restrict__ y) {
  const int64_t count = g.batch * g.out_h * g.out_w * g.c;
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, oh, ow, ch] = cuda::unravel4(e, g.out_h, g.out_w, g.c);
    const Window win = window_of(g, oh, ow);
    float sum = 0.f;
    for (int kh = win.kh_begin; kh < win.kh_end; ++kh) {
      const float* xr = x + ((b * g.in_h + win.h0 + kh) * g.in_w + win.w0) * g.c + ch;
      for (int kw = win.kw_begin; kw < win.kw_end; ++kw) sum += xr[kw * g.c];
    }
    y[e] = sum / static_cast<float>(window_count(win));
  }
}

// The outputs whose windows contain input row (or column) `i`: [*lo, *hi] (empty: lo > hi).
__device__ inline void outputs_covering(int64_t i, int pad, int kernel, int stride,
                                        int64_t out_size, int64_t* lo, int64_t* hi) {
  const int64_t p = i + pad;  // the row in padded coordinates
  *lo = p >= kernel ? (p - kernel) / stride + 1 : 0;
  *hi = min(p / stride, out_size - 1);
}

// kMax reads `argmax` (Index); kAverage divides by each window's count.
template <PoolKind kKind, typename Index>
__global__ void backward_kernel(Geometry g, const float* __restrict__ dy,
                                const Index* __restrict__ argmax, float* __restrict__ dx) {
  const int64_t count = g.batch * g.in_h * g.in_w * g.c;
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const auto [b, ih, iw, ch] = cuda::unravel4(e, g.in_h, g.in_w, g.c);
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
    outputs_covering(ih, g.pad_top, g.kernel_h, g.stride_h, g.out_h, &oh_lo, &oh_hi);
    outputs_covering(iw, g.pad_left, g.kernel_w, g.stride_w, g.out_w, &ow_lo, &ow_hi);
    float sum = 0.f;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      const int kh = static_cast<int>(ih + g.pad_top - oh * g.stride_h);
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        const int kw = static_cast<int>(iw + g.pad_left - ow * g.stride_w);
        const int64_t yi = ((b * g.out_h + oh) * g.out_w + ow) * g.c + ch;
        if constexpr (kKind == PoolKind::kMax) {
          if (static_cast<int>(argmax[yi]) == kh * g.kernel_w + kw) sum += dy[yi];
        } else {
          sum += dy[yi] / static_cast<float>(window_count(window_of(g, oh, ow)));
        }
      }
    }
    dx[e] = sum;
  }
}

Geometry checked_geometry(const Pool2dGeometry& p, const char* op) {
  RESIDUAL_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 &&
                     p.pad_top >= 0 && p.pad_left >= 0 && p.pad_bottom >= 0 && p.pad_right >= 0,
                 op, ": kernel and strides must be >= 1 and pads >= 0");
  RESIDUAL_CHECK(
      p.kernel_h * p.kernel_w <= INT32_MAX && p.stride_h <= INT32_MAX && p.stride_w <= INT32_MAX,
      op, ": window or stride too large");
  // A window wholly in the padding would have no element to take a max or mean of (Keras
  // padding never makes one); the first and last windows are the ones that could.
  RESIDUAL_CHECK(p.pad_top < p.kernel_h && p.pad_left < p.kernel_w &&
                     (p.out_h - 1) * p.stride_h - p.pad_top < p.in_h &&
                     (p.out_w - 1) * p.stride_w - p.pad_left < p.in_w,
                 op, ": a pooling window lies wholly in the padding (unsupported)");
  return {p.batch,
          p.in_h,
          p.in_w,
          p.channels,
          p.out_h,
          p.out_w,
          static_cast<int>(p.kernel_h),
          static_cast<int>(p.kernel_w),
          static_cast<int>(p.stride_h),
          static_cast<int>(p.stride_w),
          static_cast<int>(p.pad_top),
          static_cast<int>(p.pad_left)};
}

void check_sizes(const Pool2dGeometry& p, const Tensor& x_like, const Tensor& y_like,
                 const char* op) {
  RESIDUAL_CHECK(x_like.numel() == p.batch * p.in_h * p.in_w * p.channels &&
                     y_like.numel() == p.batch * p.out_h * p.out_w * p.channels,
                 op, ": tensors ", x_like.shape().str(), " and ", y_like.shape().str(),
                 " do not match the pooling geometry");
}

// The argmax index type: a byte where the window's positions fit in one.
bool byte_argmax(const Geometry& g) { return g.kernel_h * g.kernel_w <= 256; }

}  // namespace

void pool2d_forward(const Pool2dGeometry& p, const Tensor& x, Tensor& y, Tensor& workspace,
                    bool training) {
  // As the CPU kernel: an empty batch runs nothing and leaves the workspace alone.
  if (p.batch == 0) return;
  const Geometry g = checked_geometry(p, "pool2d_forward");
  check_sizes(p, x, y, "pool2d_forward");
  const int64_t count = y.numel();
  if (count == 0) return;
  cuda::DeviceGuard guard(x.device().index);
  const cudaStream_t stream = cuda::stream_of(x);
  const unsigned blocks = cuda::grid_for(count);
  if (p.kind == PoolKind::kAverage) {
    average_forward_kernel<<<blocks, cuda::kThreadsPerBlock, 0, stream>>>(g, x.device_f32(),
                                                                          y.device_f32());
    cuda::check_launch("pool2d_forward (average)");
    return;
  }
  const bool bytes = byte_argmax(g);
  void* argmax = nullptr;
  if (training) {
    const int64_t size = bytes ? 1 : static_cast<int64_t>(sizeof(int32_t));
    workspace.resize(Shape{count * size}, x.device(), DType::kUInt8);
    argmax = workspace.device_raw();
  }
  if (bytes) {
    max_forward_kernel<uint8_t><<<blocks, cuda::kThreadsPerBlock, 0, stream>>>(
        g, x.device_f32(), y.device_f32(), static_cast<uint8_t*>(argmax));
  } else {
    max_forward_kernel<int32_t><<<blocks, cuda::kThreadsPerBlock, 0, stream>>>(
        g, x.device_f32(), y.device_f32(), static_cast<int32_t*>(argmax));
  }
  cuda::check_launch("pool2d_forward (max)");
}

void pool2d_backward(const Pool2dGeometry& p, const Tensor& dy, const Tensor& workspace,
                     Tensor& dx) {
  if (p.batch == 0) return;
  const Geometry g = checked_geometry(p, "pool2d_backward");
  check_sizes(p, dx, dy, "pool2d_backward");
  const int64_t count = dx.numel();
  if (count == 0) return;
  cuda::DeviceGuard guard(dy.device().index);
  const cudaStream_t stream = cuda::stream_of(dy);
  const unsigned blocks = cuda::grid_for(count);
  if (p.kind == PoolKind::kAverage) {
    backward_kernel<PoolKind::kAverage, uint8_t><<<blocks, cuda::kThreadsPerBlock, 0, stream>>>(
        g, dy.device_f32(), nullptr, dx.device_f32());
    cuda::check_launch("pool2d_backward (average)");
    return;
  }
  const bool bytes = byte_argmax(g);
  const size_t needed = static_cast<size_t>(dy.numel()) * (bytes ? 1 : sizeof(int32_t));
  RESIDUAL_CHECK(workspace.defined() && workspace.nbytes() >= needed,
                 "pool2d_backward: max pooling needs the workspace of a training forward (", needed,
                 " bytes)");
  if (bytes) {
    backward_kernel<PoolKind::kMax, uint8_t><<<blocks, cuda::kThreadsPerBlock, 0, stream>>>(
        g, dy.device_f32(), workspace.device_data<const uint8_t>(), dx.device_f32());
  } else {
    backward_kernel<PoolKind::kMax, int32_t><<<blocks, cuda::kThreadsPerBlock, 0, stream>>>(
        g, dy.device_f32(), workspace.device_data<const int32_t>(), dx.device_f32());
  }
  cuda::check_launch("pool2d_backward (max)");
}

}  // namespace residual::ops::gpu
