// Activations on the GPU: ReLU and sigmoid as flat float4 passes (elementwise.cuh),
// linear as a device copy, softmax over the last dimension with one warp per row. The
// expressions and precisions are the CPU twin's (ops/cpu/activation.cpp).
#include <cmath>

#include "core/error.h"
#include "ops/cuda/channel_rows.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/elementwise.cuh"

namespace residual::ops::gpu {
namespace {

using cuda::Lanes;
using cuda::load_lanes;
using cuda::store_lanes;

// The element-wise activations, in the CPU twin's expressions: forward(x) and
// backward(y, dy), the gradient from the forward's output.
struct Relu {
  __device__ static float forward(float x) { return x > 0.f ? x : 0.f; }  // NaN -> 0, as the CPU
  __device__ static float backward(float y, float dy) { return y > 0.f ? dy : 0.f; }
};

struct Sigmoid {
  __device__ static float forward(float x) { return 1.f / (1.f + expf(-x)); }
  __device__ static float backward(float y, float dy) { return dy * y * (1.f - y); }
};

// y = F::forward(x) as a launch_flat op.
template <class F>
struct Forward {
  const float* x;
  float* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    Lanes<V> t = load_lanes<V>(x + i);
#pragma unroll
    for (int v = 0; v < V; ++v) t.v[v] = F::forward(t.v[v]);
    store_lanes<V>(y + i, t);
  }
};

// dx = F::backward(y, dy) as a launch_flat op.
template <class F>
struct Backward {
  const float *y, *dy;
  float* dx;
  template <int V>
  __device__ void apply(int64_t i) const {
    const Lanes<V> yv = load_lanes<V>(y + i);
    Lanes<V> g = load_lanes<V>(dy + i);
#pragma unroll
    for (int v = 0; v < V; ++v) g.v[v] = F::backward(yv.v[v], g.v[v]);
    store_lanes<V>(dx + i, g);
  }
};

constexpr int kWarp = 32;

// Butterfly reductions: every lane ends with the same value (a + b == b + a exactly, so
// the result does not depend on the lane), deterministic for a given width.
__device__ __forceinline__ float warp_max(float v) {
  for (int m = kWarp / 2; m > 0; m /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int m = kWarp / 2; m > 0; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// One warp per row of k: max, sum of exp(x - max) in double, then y = exp(x - max) / sum
// with the reciprocal rounded to float, as the CPU. Rows are warp-uniform, so every lane
// of a warp takes part in each shuffle.
__global__ void softmax_forward_kernel(const float* x, float* y, int64_t rows, int64_t k) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; r < rows;
       r += warps) {
    const float* xr = x + r * k;
    float* yr = y + r * k;
    float top = -INFINITY;
    for (int64_t i = lane; i < k; i += kWarp) top = fmaxf(top, xr[i]);
    top = warp_max(top);
    double total = 0;
    for (int64_t i = lane; i < k; i += kWarp) total += expf(xr[i] - top);
    const float inv = static_cast<float>(1.0 / warp_sum(total));
    for (int64_t i = lane; i < k; i += kWarp) yr[i] = expf(xr[i] - top) * inv;
  }
}

// dx = y * (dy - sum(dy * y)) per row, the dot in double.
__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t rows,
                                        int64_t k) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; r < rows;
       r += warps) {
    const int64_t o = r * k;
    double dot = 0;
    for (int64_t i = lane; i < k; i += kWarp) dot += static_cast<double>(dy[o + i]) * y[o + i];
    dot = warp_sum(dot);
    for (int64_t i = lane; i < k; i += kWarp) {
      dx[o + i] = static_cast<float>(y[o + i] * (dy[o + i] - dot));
    }
  }
}

int64_t last_dim(const Tensor& t) { return t.rank() > 0 ? t.shape()[t.rank() - 1] : 1; }

unsigned softmax_grid(int64_t rows) { return cuda::grid_for(rows * kWarp, cuda::kThreadsPerBlock); }

}  // namespace

void activation_forward(Activation kind, const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const Device device = x.device();
  const float* xp = x.device_f32();
  float* yp = y.device_f32();
  switch (kind) {
    case Activation::kLinear:
      cuda::copy_on_device(yp, xp, n, device);
      break;
    case Activation::kRelu:
      cuda::launch_flat(Forward<Relu>{xp, yp}, n, cuda::all_aligned16({xp, yp}), device,
                        "activation_forward (relu)");
      break;
    case Activation::kSigmoid:
      cuda::launch_flat(Forward<Sigmoid>{xp, yp}, n, cuda::all_aligned16({xp, yp}), device,
                        "activation_forward (sigmoid)");
      break;
    case Activation::kSoftmax: {
      const int64_t k = last_dim(x), rows = n / k;
      cuda::DeviceGuard guard(device.index);
      softmax_forward_kernel<<<softmax_grid(rows), cuda::kThreadsPerBlock, 0, cuda::stream_of(x)>>>(
          xp, yp, rows, k);
      cuda::check_launch("activation_forward (softmax)");
      break;
    }
  }
}

void activation_backward(Activation kind, const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t n = y.numel();
  if (n == 0) return;
  const Device device = y.device();
  const float* yp = y.device_f32();
  const float* g = dy.device_f32();
  float* out = dx.device_f32();
  switch (kind) {
    case Activation::kLinear:
      cuda::copy_on_device(out, g, n, device);
      break;
    case Activation::kRelu:
      cuda::launch_flat(Backward<Relu>{yp, g, out}, n, cuda::all_aligned16({yp, g, out}), device,
                        "activation_backward (relu)");
      break;
    case Activation::kSigmoid:
      cuda::launch_flat(Backward<Sigmoid>{yp, g, out}, n, cuda::all_aligned16({yp, g, out}), device,
                        "activation_backward (sigmoid)");
      break;
    case Activation::kSoftmax: {
      const int64_t k = last_dim(y), rows = n / k;
      cuda::DeviceGuard guard(device.index);
      softmax_backward_kernel<<<softmax_grid(rows), cuda::kThreadsPerBlock, 0,
                                cuda::stream_of(y)>>>(yp, g, out, rows, k);
      cuda::check_launch("activation_backward (softmax)");
      break;
    }
  }
}

}  // namespace residual::ops::gpu
