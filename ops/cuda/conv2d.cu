// Convolution on CUDA, the twin of ops/cpu/conv2d.cpp: the same geometry, NHWC
// activations, K x C/groups x kH x kW kernels, and the same semantics (outputs sized by
// the caller and overwritten, dw included; bias added after the convolution; dbias the
// sum of dy over N, H, W; a batch of 0 runs nothing and zeroes the weight gradients).
//
// cuDNN does the convolutions (conv2d_cudnn.cu). What it cannot take is staged here:
// - the filter: cuDNN's NHWC kernels want it K x kH x kW x C/g, so it is transposed into
//   a scratch (and dw back) unless the two layouts coincide (1x1 kernels, depthwise);
// - asymmetric padding (TensorFlow 'same' with stride 2 or an even kernel): cuDNN pads
//   both sides alike, so the extra rows and columns are zeros in a padded copy of x (and
//   the padded dx is cropped), while the symmetric part stays cuDNN's own padding;
// - tensors of 2^31 elements or more: cuDNN's descriptors take int sizes, so the batch is
//   split, and dw sums the chunks in order (beta 1 after the first);
// - pointers not 16-byte aligned (gradients inside the reducer's buckets are views at any
//   float offset): staged through an aligned scratch, as vectorised kernels assume it.
// A shape cuDNN has no deterministic exact algorithm for runs the direct kernels
// (conv2d_direct.cu) instead, with a warning.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>

#include "ops/cuda/common.cuh"
#include "ops/cuda/conv2d_internal.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/cudnn_settings.h"
#include "ops/cuda/reduce.cuh"

namespace residual::ops::gpu {
namespace {

using conv::CudnnShape;
using conv::Direction;
using cuda::Scratch;

// K x C x RS -> K x RS x C (rs: the kH * kW taps), and back.
__global__ void kcrs_to_krsc(const float* __restrict__ in, float* __restrict__ out, int64_t k,
                             int64_t c, int64_t rs) {
  for (int64_t i = cuda::first_index(); i < k * rs * c; i += cuda::index_step()) {
    const int64_t ci = i % c, t = i / c;
    out[i] = in[((t / rs) * c + ci) * rs + t % rs];
  }
}

__global__ void krsc_to_kcrs(const float* __restrict__ in, float* __restrict__ out, int64_t k,
                             int64_t c, int64_t rs) {
  for (int64_t i = cuda::first_index(); i < k * c * rs; i += cuda::index_step()) {
    const int64_t tap = i % rs, t = i / rs;
    out[i] = in[((t / c) * rs + tap) * c + t % c];
  }
}

// Padded copy of n images (every element written: zeros outside x), and the crop back.
struct PadDims {
  int64_t n, h, w, c, padded_h, padded_w, top, left;
};

__global__ void pad_images(const float* __restrict__ x, float* __restrict__ out, PadDims d) {
  for (int64_t i = cuda::first_index(); i < d.n * d.padded_h * d.padded_w * d.c;
       i += cuda::index_step()) {
    const auto [b, ph, pw, ch] = cuda::unravel4(i, d.padded_h, d.padded_w, d.c);
    const int64_t ih = ph - d.top, iw = pw - d.left;
    const bool inside = ih >= 0 && ih < d.h && iw >= 0 && iw < d.w;
    out[i] = inside ? x[((b * d.h + ih) * d.w + iw) * d.c + ch] : 0.f;
  }
}

__global__ void crop_images(const float* __restrict__ padded, float* __restrict__ out, PadDims d) {
  for (int64_t i = cuda::first_index(); i < d.n * d.h * d.w * d.c; i += cuda::index_step()) {
    const auto [b, ih, iw, ch] = cuda::unravel4(i, d.h, d.w, d.c);
    out[i] = padded[((b * d.padded_h + ih + d.top) * d.padded_w + iw + d.left) * d.c + ch];
  }
}

__global__ void add_bias(float* __restrict__ y, const float* __restrict__ bias, int64_t total,
                         int64_t channels) {
  for (int64_t i = cuda::first_index(); i < total; i += cuda::index_step()) {
    y[i] += bias[i % channels];
  }
}

// dbias in two passes with an order fixed by the sizes alone (bit-identical run to run):
// block (x, y) sums rows [y * rows_per_chunk, ...) of channels 32x .. 32x + 31 with 8 row
// lanes, combined in lane order; then each channel adds its chunks in order.
constexpr int kBiasLanes = 32, kBiasRowLanes = 8, kMaxBiasChunks = 1024;

__global__ void bias_partials(const float* __restrict__ dy, int64_t rows, int64_t channels,
                              int64_t rows_per_chunk, double* __restrict__ partial) {
  const int64_t c = blockIdx.x * int64_t{kBiasLanes} + threadIdx.x;
  const int64_t first = blockIdx.y * rows_per_chunk;
  const int64_t last = first + rows_per_chunk < rows ? first + rows_per_chunk : rows;
  double acc = 0;
  if (c < channels) {
    for (int64_t r = first + threadIdx.y; r < last; r += kBiasRowLanes) acc += dy[r * channels + c];
  }
  __shared__ double lanes[kBiasRowLanes][kBiasLanes];
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    double total = 0;
    for (int j = 0; j < kBiasRowLanes; ++j) total += lanes[j][threadIdx.x];
    partial[blockIdx.y * channels + c] = total;
  }
}

__global__ void bias_finish(const double* __restrict__ partial, int64_t chunks, int64_t channels,
                            float* __restrict__ dbias) {
  for (int64_t c = cuda::first_index(); c < channels; c += cuda::index_step()) {
    double total = 0;
    for (int64_t k = 0; k < chunks; ++k) total += partial[k * channels + c];
    dbias[c] = static_cast<float>(total);
  }
}

void bias_gradient(const float* dy, int64_t rows, int64_t channels, float* dbias, Device device,
                   cudaStream_t stream) {
  const int64_t chunks = std::clamp<int64_t>((rows + 255) / 256, 1, kMaxBiasChunks);
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  Scratch partial(device, static_cast<size_t>(chunks * channels) * sizeof(double));
  const dim3 grid(static_cast<unsigned>((channels + kBiasLanes - 1) / kBiasLanes),
                  static_cast<unsigned>(chunks));
  bias_partials<<<grid, dim3(kBiasLanes, kBiasRowLanes), 0, stream>>>(
      dy, rows, channels, rows_per_chunk, partial.as<double>());
  cuda::check_launch("conv2d bias_partials kernel");
  bias_finish<<<cuda::grid_for(channels), cuda::kThreadsPerBlock, 0, stream>>>(
      partial.as<double>(), chunks, channels, dbias);
  cuda::check_launch("conv2d bias_finish kernel");
}

int to_int(int64_t v, const char* what) {
  RESIDUAL_CHECK(v >= 0 && v <= INT_MAX, "conv2d on CUDA: ", what, " ", v,
                 " is outside cuDNN's int range");
  return static_cast<int>(v);
}

// How one op call maps onto cuDNN calls.
struct Plan {
  int device = 0;
  cudaStream_t stream = nullptr;
  int64_t extra_top = 0, extra_left = 0, padded_h = 0, padded_w = 0;  // explicit zero padding
  bool padded = false;
  bool transpose_filter = false;  // KCRS and KRSC differ (C/g > 1 and more than one tap)
  int64_t chunk = 0;              // images per cuDNN call
  CudnnShape base;                // the shape of a call, n aside

  CudnnShape shape(int64_t n) const {
    CudnnShape s = base;
    s.n = static_cast<int>(n);
    return s;
  }
};

Plan plan_of(const Conv2dGeometry& g, const Tensor& any) {
  RESIDUAL_CHECK(g.groups > 0 && g.in_c % g.groups == 0 && g.out_c % g.groups == 0,
                 "conv2d on CUDA: ", g.in_c, " input and ", g.out_c,
                 " output channels do not split into ", g.groups, " groups");
  Plan p;
  p.device = any.device().index;
  p.stream = cuda::stream_of(any);
  const int64_t pad_h = std::min(g.pad_top, g.pad_bottom),
                pad_w = std::min(g.pad_left, g.pad_right);
  p.extra_top = g.pad_top - pad_h;
  p.extra_left = g.pad_left - pad_w;
  p.padded_h = g.in_h + g.pad_top + g.pad_bottom - 2 * pad_h;
  p.padded_w = g.in_w + g.pad_left + g.pad_right - 2 * pad_w;
  p.padded = p.padded_h != g.in_h || p.padded_w != g.in_w;
  const int64_t cin_g = g.in_c / g.groups;
  p.transpose_filter = cin_g > 1 && g.kernel_h * g.kernel_w > 1;
  const int64_t per_image =
      std::max({p.padded_h * p.padded_w * g.in_c, g.out_h * g.out_w * g.out_c});
  RESIDUAL_CHECK(p.padded_h * p.padded_w * g.in_c > 0 && g.out_h * g.out_w * g.out_c > 0,
                 "conv2d on CUDA: empty images (", g.in_h, "x", g.in_w, "x", g.in_c, " -> ",
                 g.out_h, "x", g.out_w, "x", g.out_c, ")");
  RESIDUAL_CHECK(
      per_image <= INT_MAX && g.out_c * cin_g * g.kernel_h * g.kernel_w <= INT_MAX,
      "conv2d on CUDA: one image or the kernel has 2^31 elements or more (cuDNN's limit)");
  p.chunk = std::min(g.batch, INT_MAX / per_image);
  // Chunks of a multiple of 4 images start 16-byte aligned when the tensor does.
  if (p.chunk < g.batch && p.chunk >= 4) p.chunk -= p.chunk % 4;
  CudnnShape& s = p.base;
  s.c = to_int(g.in_c, "channel count");
  s.h = to_int(p.padded_h, "height");
  s.w = to_int(p.padded_w, "width");
  s.k = to_int(g.out_c, "filter count");
  s.r = to_int(g.kernel_h, "kernel height");
  s.s = to_int(g.kernel_w, "kernel width");
  s.groups = to_int(g.groups, "group count");
  s.pad_h = to_int(pad_h, "padding");
  s.pad_w = to_int(pad_w, "padding");
  s.stride_h = to_int(g.stride_h, "stride");
  s.stride_w = to_int(g.stride_w, "stride");
  s.dilation_h = to_int(g.dilation_h, "dilation");
  s.dilation_w = to_int(g.dilation_w, "dilation");
  s.out_h = to_int(g.out_h, "output height");
  s.out_w = to_int(g.out_w, "output width");
  s.tf32 = cuda::allow_tf32();
  return p;
}

// Whether cuDNN takes every chunk shape of this call (else: the direct kernels).
bool use_cudnn(const Plan& p, Direction d, int64_t batch) {
  if (!conv::cudnn_supports(p.device, d, p.shape(p.chunk))) return false;
  return batch % p.chunk == 0 || conv::cudnn_supports(p.device, d, p.shape(batch % p.chunk));
}

bool aligned(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// A staging buffer of `count` floats on the plan's GPU.
std::unique_ptr<Scratch> float_scratch(const Plan& p, int64_t count) {
  return std::make_unique<Scratch>(Device::cuda(p.device),
                                   static_cast<size_t>(count) * sizeof(float));
}

// Queues a copy of `count` floats into or out of a staging buffer on the plan's stream.
void copy_staged(float* dst, const float* src, int64_t count, const Plan& p) {
  cuda::check(cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(float),
                              cudaMemcpyDeviceToDevice, p.stream),
              "cudaMemcpyAsync (conv2d staging)");
}

// `count` floats at `src`, 16-byte aligned: `src` itself, or a copy queued into `staged`.
const float* aligned_input(const float* src, int64_t count, const Plan& p,
                           std::unique_ptr<Scratch>& staged) {
  if (aligned(src)) return src;
  if (!staged) staged = float_scratch(p, count);
  copy_staged(staged->as<float>(), src, count, p);
  return staged->as<float>();
}

int64_t x_numel(const Conv2dGeometry& g) { return g.batch * g.in_h * g.in_w * g.in_c; }
int64_t y_numel(const Conv2dGeometry& g) { return g.batch * g.out_h * g.out_w * g.out_c; }
int64_t w_numel(const Conv2dGeometry& g) {
  return g.out_c * (g.in_c / std::max<int64_t>(g.groups, 1)) * g.kernel_h * g.kernel_w;
}

// The filter as cuDNN takes it (K x kH x kW x C/g, aligned), in `staged` where needed.
const float* cudnn_filter(const Conv2dGeometry& g, const float* w, const Plan& p,
                          std::unique_ptr<Scratch>& staged) {
  if (!p.transpose_filter) return aligned_input(w, w_numel(g), p, staged);
  const int64_t cin_g = g.in_c / g.groups, taps = g.kernel_h * g.kernel_w;
  staged = float_scratch(p, g.out_c * cin_g * taps);
  kcrs_to_krsc<<<cuda::grid_for(g.out_c * cin_g * taps), cuda::kThreadsPerBlock, 0, p.stream>>>(
      w, staged->as<float>(), g.out_c, cin_g, taps);
  cuda::check_launch("conv2d kcrs_to_krsc kernel");
  return staged->as<float>();
}

PadDims pad_dims(const Conv2dGeometry& g, const Plan& p, int64_t n) {
  return {n, g.in_h, g.in_w, g.in_c, p.padded_h, p.padded_w, p.extra_top, p.extra_left};
}

// Images [n0, n0 + nb) of x as cuDNN takes them: zero-padded into `staged` where the
// padding is asymmetric, else x itself (aligned).
const float* cudnn_input(const Conv2dGeometry& g, const float* x, int64_t n0, int64_t nb,
                         const Plan& p, std::unique_ptr<Scratch>& staged) {
  const int64_t image = g.in_h * g.in_w * g.in_c;
  if (!p.padded) return aligned_input(x + n0 * image, nb * image, p, staged);
  const int64_t padded_image = p.padded_h * p.padded_w * g.in_c;
  if (!staged) staged = float_scratch(p, p.chunk * padded_image);
  pad_images<<<cuda::grid_for(nb * padded_image), cuda::kThreadsPerBlock, 0, p.stream>>>(
      x + n0 * image, staged->as<float>(), pad_dims(g, p, nb));
  cuda::check_launch("conv2d pad_images kernel");
  return staged->as<float>();
}

void check_size(const Tensor& t, int64_t numel, const char* what) {
  RESIDUAL_CHECK(t.numel() == numel, "conv2d on CUDA: ", what, " has ", t.numel(), " elements (",
                 t.shape().str(), ") where the geometry needs ", numel);
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor* bias,
                    Tensor& y) {
  if (g.batch == 0) return;
  check_size(x, x_numel(g), "x");
  check_size(w, w_numel(g), "the kernel");
  check_size(y, y_numel(g), "y");
  if (bias) check_size(*bias, g.out_c, "the bias");
  cuda::DeviceGuard guard(x.device().index);
  const Plan p = plan_of(g, x);
  const float* xd = x.device_f32();
  float* yd = y.device_f32();
  if (use_cudnn(p, Direction::kForward, g.batch)) {
    std::unique_ptr<Scratch> filter, input, output;
    const float* wk = cudnn_filter(g, w.device_f32(), p, filter);
    const int64_t y_image = g.out_h * g.out_w * g.out_c;
    for (int64_t n0 = 0; n0 < g.batch; n0 += p.chunk) {
      const int64_t nb = std::min(p.chunk, g.batch - n0);
      const float* xin = cudnn_input(g, xd, n0, nb, p, input);
      float* yout = yd + n0 * y_image;
      if (!aligned(yout) && !output) output = float_scratch(p, p.chunk * y_image);
      float* target = aligned(yout) ? yout : output->as<float>();
      conv::cudnn_forward(p.device, p.shape(nb), xin, wk, target);
      if (target != yout) copy_staged(yout, target, nb * y_image, p);
    }
  } else {
    conv::direct_forward(g, xd, w.device_f32(), yd, p.stream);
  }
  if (bias) {
    add_bias<<<cuda::grid_for(y_numel(g)), cuda::kThreadsPerBlock, 0, p.stream>>>(
        yd, bias->device_f32(), y_numel(g), g.out_c);
    cuda::check_launch("conv2d add_bias kernel");
  }
}

void conv2d_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  if (g.batch == 0) return;
  check_size(dy, y_numel(g), "dy");
  check_size(w, w_numel(g), "the kernel");
  check_size(dx, x_numel(g), "dx");
  cuda::DeviceGuard guard(dy.device().index);
  const Plan p = plan_of(g, dy);
  const float* dyd = dy.device_f32();
  float* dxd = dx.device_f32();
  if (!use_cudnn(p, Direction::kBackwardData, g.batch)) {
    conv::direct_backward_data(g, dyd, w.device_f32(), dxd, p.stream);
    return;
  }
  std::unique_ptr<Scratch> filter, input, output;
  const float* wk = cudnn_filter(g, w.device_f32(), p, filter);
  const int64_t x_image = g.in_h * g.in_w * g.in_c, y_image = g.out_h * g.out_w * g.out_c;
  for (int64_t n0 = 0; n0 < g.batch; n0 += p.chunk) {
    const int64_t nb = std::min(p.chunk, g.batch - n0);
    const float* dyin = aligned_input(dyd + n0 * y_image, nb * y_image, p, input);
    float* dxout = dxd + n0 * x_image;
    const bool staged = p.padded || !aligned(dxout);
    if (staged && !output) output = float_scratch(p, p.chunk * p.padded_h * p.padded_w * g.in_c);
    float* target = staged ? output->as<float>() : dxout;
    conv::cudnn_backward_data(p.device, p.shape(nb), dyin, wk, target);
    if (staged) {
      const PadDims d = pad_dims(g, p, nb);  // no padding: a plain copy
      crop_images<<<cuda::grid_for(nb * x_image), cuda::kThreadsPerBlock, 0, p.stream>>>(target,
                                                                                         dxout, d);
      cuda::check_launch("conv2d crop_images kernel");
    }
  }
}

void conv2d_backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dw,
                             Tensor* dbias) {
  if (g.batch == 0) {  // no samples: the gradients are sums of nothing
    dw.zero();
    if (dbias) dbias->zero();
    return;
  }
  check_size(x, x_numel(g), "x");
  check_size(dy, y_numel(g), "dy");
  check_size(dw, w_numel(g), "dw");
  if (dbias) check_size(*dbias, g.out_c, "dbias");
  cuda::DeviceGuard guard(x.device().index);
  const Plan p = plan_of(g, x);
  const float* xd = x.device_f32();
  const float* dyd = dy.device_f32();
  float* dwd = dw.device_f32();
  if (use_cudnn(p, Direction::kBackwardFilter, g.batch)) {
    const int64_t cin_g = g.in_c / g.groups, taps = g.kernel_h * g.kernel_w;
    const bool staged = p.transpose_filter || !aligned(dwd);
    Scratch filter(Device::cuda(p.device),
                   staged ? static_cast<size_t>(w_numel(g)) * sizeof(float) : 0);
    float* target = staged ? filter.as<float>() : dwd;
    std::unique_ptr<Scratch> input, grad;
    const int64_t y_image = g.out_h * g.out_w * g.out_c;
    for (int64_t n0 = 0; n0 < g.batch; n0 += p.chunk) {
      const int64_t nb = std::min(p.chunk, g.batch - n0);
      const float* xin = cudnn_input(g, xd, n0, nb, p, input);
      const float* dyin = aligned_input(dyd + n0 * y_image, nb * y_image, p, grad);
      conv::cudnn_backward_filter(p.device, p.shape(nb), xin, dyin, target, n0 == 0 ? 0.f : 1.f);
    }
    if (p.transpose_filter) {
      krsc_to_kcrs<<<cuda::grid_for(w_numel(g)), cuda::kThreadsPerBlock, 0, p.stream>>>(
          target, dwd, g.out_c, cin_g, taps);
      cuda::check_launch("conv2d krsc_to_kcrs kernel");
    } else if (staged) {
      copy_staged(dwd, target, w_numel(g), p);
    }
  } else {
    conv::direct_backward_weights(g, xd, dyd, dwd, p.stream);
  }
  if (dbias) {
    bias_gradient(dyd, g.batch * g.out_h * g.out_w, g.out_c, dbias->device_f32(),
                  Device::cuda(p.device), p.stream);
  }
}

}  // namespace residual::ops::gpu
