#pragma once
// Flat element-wise kernels: an Op's apply<V>(i) handles elements [i, i + V). With every
// pointer 16-byte aligned the body runs on float4 (V = 4) and the last n % 4 elements
// with V = 1; otherwise on single floats throughout. Element i is read and written by
// one thread only, so an output may alias an input.
#include <cstdint>

#include "ops/cuda/channel_rows.cuh"
#include "ops/cuda/common.cuh"

namespace residual::cuda {

template <int V, class Op>
__global__ void flat_kernel(Op op, int64_t n) {
  const int64_t vectors = n / V;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < vectors; i += step) op.template apply<V>(i * V);
  if constexpr (V > 1) {
    const int64_t tail = vectors * V + tid;
    if (tail < n) op.template apply<1>(tail);
  }
}

// Runs op over n elements on the compute stream of GPU `device`; `vectorize` when every
// pointer the op touches is 16-byte aligned (all_aligned16).
template <class Op>
void launch_flat(const Op& op, int64_t n, bool vectorize, Device device, const char* name) {
  if (n <= 0) return;
  DeviceGuard guard(device.index);
  const cudaStream_t stream = compute_stream(device.index);
  if (vectorize) {
    flat_kernel<4, Op><<<grid_for((n + 3) / 4), kThreadsPerBlock, 0, stream>>>(op, n);
  } else {
    flat_kernel<1, Op><<<grid_for(n), kThreadsPerBlock, 0, stream>>>(op, n);
  }
  check_launch(name);
}

// A device-to-device copy on the compute stream (linear activations, a sum of one input).
inline void copy_on_device(float* dst, const float* src, int64_t n, Device device) {
  if (n <= 0 || dst == src) return;
  DeviceGuard guard(device.index);
  check(cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<size_t>(n), cudaMemcpyDeviceToDevice,
                        compute_stream(device.index)),
        "cudaMemcpyAsync (device to device)");
}

}  // namespace residual::cuda
