// Mean over H x W per sample and channel on the GPU: N x H x W x C -> N x C, and back.
// The forward is a reduction, so it sums in a fixed order (deterministic run to run): a
// block takes 32 channels of one sample, its 8 thread rows stride over the pixels with a
// float sum each, and one thread adds the 8 partial sums in row order.
#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

constexpr int kChannelsPerBlock = 32;  // a warp: neighbouring channels, coalesced loads
constexpr int kPixelRows = 8;

// Grid-stride over (sample, channel tile) pairs; the tile index is the same for a whole
// block, so every thread reaches the __syncthreads.
__global__ void global_avg_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                               int64_t n, int64_t pixels, int64_t c, float inv) {
  __shared__ float partial[kPixelRows][kChannelsPerBlock];
  const int64_t tiles_per_sample = (c + kChannelsPerBlock - 1) / kChannelsPerBlock;
  for (int64_t tile = blockIdx.x; tile < n * tiles_per_sample; tile += gridDim.x) {
    const int64_t b = tile / tiles_per_sample;
    const int64_t ch = (tile - b * tiles_per_sample) * kChannelsPerBlock + threadIdx.x;
    float sum = 0.f;
    if (ch < c) {
      const float* xs = x + b * pixels * c + ch;
      for (int64_t p = threadIdx.y; p < pixels; p += kPixelRows) sum += xs[p * c];
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && ch < c) {
      float total = partial[0][threadIdx.x];
      for (int r = 1; r < kPixelRows; ++r) total += partial[r][threadIdx.x];
      y[b * c + ch] = total * inv;
    }
    __syncthreads();  // `partial` is rewritten by the next tile
  }
}

__global__ void global_avg_pool_backward_kernel(const float* __restrict__ dy,
                                                float* __restrict__ dx, int64_t count,
                                                int64_t pixels, int64_t c, float inv) {
  for (int64_t e = cuda::first_index(); e < count; e += cuda::index_step()) {
    const int64_t ch = e % c, b = e / (pixels * c);
    dx[e] = dy[b * c + ch] * inv;
  }
}

}  // namespace

void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  RESIDUAL_CHECK(x.rank() == 4, "global_avg_pool_forward: expected N x H x W x C, got ",
                 x.shape().str());
  const int64_t n = x.dim(0), c = x.dim(3), pixels = x.dim(1) * x.dim(2);
  RESIDUAL_CHECK(y.numel() == n * c, "global_avg_pool_forward: output ", y.shape().str(),
                 " is not ", n, " x ", c);
  if (n * c == 0) return;
  // As the CPU kernel: the sum times the float reciprocal of the pixel count.
  const float inv = 1.f / static_cast<float>(pixels);
  const int64_t tiles = n * ((c + kChannelsPerBlock - 1) / kChannelsPerBlock);
  cuda::DeviceGuard guard(x.device().index);
  global_avg_pool_forward_kernel<<<static_cast<unsigned>(std::min<int64_t>(tiles, 1 << 16)),
                                   dim3(kChannelsPerBlock, kPixelRows), 0, cuda::stream_of(x)>>>(
      x.device_f32(), y.device_f32(), n, pixels, c, inv);
  cuda::check_launch("global_avg_pool_forward");
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  RESIDUAL_CHECK(dx.rank() == 4, "global_avg_pool_backward: expected N x H x W x C, got ",
                 dx.shape().str());
  const int64_t n = dx.dim(0), c = dx.dim(3), pixels = dx.dim(1) * dx.dim(2);
  RESIDUAL_CHECK(dy.numel() == n * c, "global_avg_pool_backward: gradient ", dy.shape().str(),
                 " is not ", n, " x ", c);
  const int64_t count = dx.numel();
  if (count == 0) return;
  const float inv = 1.f / static_cast<float>(pixels);
  cuda::DeviceGuard guard(dy.device().index);
  global_avg_pool_backward_kernel<<<cuda::grid_for(count), cuda::kThreadsPerBlock, 0,
                                    cuda::stream_of(dy)>>>(dy.device_f32(), dx.device_f32(), count,
                                                           pixels, c, inv);
  cuda::check_launch("global_avg_pool_backward");
}

}  // namespace residual::ops::gpu
