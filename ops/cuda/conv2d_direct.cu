// Direct convolution kernels (ops/cuda/conv2d_internal.cuh): the fallback for a geometry
// cuDNN has no deterministic exact algorithm for. One thread per output element (forward,
// backward data) or one block per weight (backward weights, a fixed-order block sum), on
// the op's own layouts, so asymmetric padding and the KCRS filter need no staging.
// Correct and deterministic first; nothing here is tuned.
#include "ops/cuda/common.cuh"
#include "ops/cuda/conv2d_internal.cuh"
#include "ops/cuda/reduce.cuh"

namespace residual::ops::gpu::conv {
namespace {

__global__ void forward_kernel(Conv2dGeometry g, const float* __restrict__ x,
                               const float* __restrict__ w, float* __restrict__ y) {
  const int64_t total = g.batch * g.out_h * g.out_w * g.out_c;
  const int64_t cin_g = g.in_c / g.groups, cout_g = g.out_c / g.groups;
  const int64_t taps = g.kernel_h * g.kernel_w;
  for (int64_t i = cuda::first_index(); i < total; i += cuda::index_step()) {
    const auto [n, oh, ow, co] = cuda::unravel4(i, g.out_h, g.out_w, g.out_c);
    const int64_t first_c = (co / cout_g) * cin_g;
    float acc = 0.f;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      if (ih < 0 || ih >= g.in_h) continue;
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
        if (iw < 0 || iw >= g.in_w) continue;
        const float* xp = x + ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + first_c;
        const float* wp = w + co * cin_g * taps + kh * g.kernel_w + kw;
        for (int64_t ci = 0; ci < cin_g; ++ci) acc += xp[ci] * wp[ci * taps];
      }
    }
    y[i] = acc;
  }
}

__global__ void backward_data_kernel(Conv2dGeometry g, const float* __restrict__ dy,
                                     const float* __restrict__ w, float* __restrict__ dx) {
  const int64_t total = g.batch * g.in_h * g.in_w * g.in_c;
  const int64_t cin_g = g.in_c / g.groups, cout_g = g.out_c / g.groups;
  for (int64_t i = cuda::first_index(); i < total; i += cuda::index_step()) {
    const auto [n, ih, iw, ci] = cuda::unravel4(i, g.in_h, g.in_w, g.in_c);
    const int64_t first_co = (ci / cin_g) * cout_g, cig = ci % cin_g;
    float acc = 0.f;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t row = ih + g.pad_top - kh * g.dilation_h;  // oh * stride_h
      if (row < 0 || row % g.stride_h != 0 || row / g.stride_h >= g.out_h) continue;
      const int64_t oh = row / g.stride_h;
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const int64_t col = iw + g.pad_left - kw * g.dilation_w;
        if (col < 0 || col % g.stride_w != 0 || col / g.stride_w >= g.out_w) continue;
        const int64_t ow = col / g.stride_w;
        const float* dyp = dy + ((n * g.out_h + oh) * g.out_w + ow) * g.out_c + first_co;
        for (int64_t j = 0; j < cout_g; ++j) {
          const int64_t co = first_co + j;
          acc += dyp[j] * w[((co * cin_g + cig) * g.kernel_h + kh) * g.kernel_w + kw];
        }
      }
    }
    dx[i] = acc;
  }
}

// One block per weight: its threads split the (n, oh, ow) positions in a fixed pattern
// and block_sum adds their partial sums as a fixed tree.
__global__ void backward_weights_kernel(Conv2dGeometry g, const float* __restrict__ x,
                                        const float* __restrict__ dy, float* __restrict__ dw) {
  const int64_t cin_g = g.in_c / g.groups, cout_g = g.out_c / g.groups;
  const int64_t total = g.out_c * cin_g * g.kernel_h * g.kernel_w;
  const int64_t positions = g.batch * g.out_h * g.out_w;
  for (int64_t e = blockIdx.x; e < total; e += gridDim.x) {
    const auto [co, cig, kh, kw] = cuda::unravel4(e, cin_g, g.kernel_h, g.kernel_w);
    const int64_t ci = (co / cout_g) * cin_g + cig;
    double acc = 0;
    for (int64_t p = threadIdx.x; p < positions; p += blockDim.x) {
      const int64_t ow = p % g.out_w;
      const int64_t rest = p / g.out_w;
      const int64_t oh = rest % g.out_h;
      const int64_t n = rest / g.out_h;
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
      if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
      acc += static_cast<double>(x[((n * g.in_h + ih) * g.in_w + iw) * g.in_c + ci]) *
             dy[p * g.out_c + co];
    }
    const double sum = cuda::block_sum(acc);
    if (threadIdx.x == 0) dw[e] = static_cast<float>(sum);
  }
}

}  // namespace

void direct_forward(const Conv2dGeometry& g, const float* x, const float* w, float* y,
                    cudaStream_t stream) {
  const int64_t total = g.batch * g.out_h * g.out_w * g.out_c;
  forward_kernel<<<cuda::grid_for(total), cuda::kThreadsPerBlock, 0, stream>>>(g, x, w, y);
  cuda::check_launch("conv2d direct forward kernel");
}

void direct_backward_data(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                          cudaStream_t stream) {
  const int64_t total = g.batch * g.in_h * g.in_w * g.in_c;
  backward_data_kernel<<<cuda::grid_for(total), cuda::kThreadsPerBlock, 0, stream>>>(g, dy, w, dx);
  cuda::check_launch("conv2d direct backward-data kernel");
}

void direct_backward_weights(const Conv2dGeometry& g, const float* x, const float* dy, float* dw,
                             cudaStream_t stream) {
  const int64_t total = g.out_c * (g.in_c / g.groups) * g.kernel_h * g.kernel_w;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(total, int64_t{1} << 16));
  backward_weights_kernel<<<blocks, cuda::kReduceThreads, 0, stream>>>(g, x, dy, dw);
  cuda::check_launch("conv2d direct backward-weights kernel");
}

}  // namespace residual::ops::gpu::conv
