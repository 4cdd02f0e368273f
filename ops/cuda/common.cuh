#pragma once
// Helpers shared by the CUDA backend's .cu files (never included by host code).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/cuda/cuda_context.h"

namespace residual::cuda {

// A failed CUDA call is an Error naming the call and the runtime's reason.
inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA ", what, " failed: ", cudaGetErrorString(status));
}

// Makes `index` the calling thread's current GPU for its scope (runtime calls such as
// cudaMalloc act on the current one), and restores the previous one after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != index) check(cudaSetDevice(index), "cudaSetDevice");
    changed_ = previous_ != index;
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

// The compute stream of the GPU that holds `t`: every kernel of an op is queued there,
// in order with the copies and memsets of device_memory.cu.
inline cudaStream_t stream_of(const Tensor& t) { return compute_stream(t.device().index); }

// Threads per block for the element-wise kernels, and a grid that covers `n` elements
// with grid-stride loops (capped: a huge tensor loops instead of launching more blocks).
constexpr int kThreadsPerBlock = 256;
inline unsigned grid_for(int64_t n, int threads = kThreadsPerBlock) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 16));
}

// After a kernel launch: a bad configuration or a fault of an earlier kernel is an Error
// naming the kernel (launches themselves return nothing).
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Grid-stride loops, in 64 bits (tensors may have 2^31 elements or more):
//   for (int64_t i = first_index(); i < n; i += index_step())
__device__ inline int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t index_step() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// The coordinates of flat index i in a row-major array of ? x d1 x d2 x d3, the last
// fastest: (n, h, w, c) of an NHWC tensor, (k, c, r, s) of a KCRS filter. Meant for
// structured bindings: const auto [n, h, w, c] = unravel4(i, H, W, C);
struct Coords4 {
  int64_t i0, i1, i2, i3;
};
__device__ inline Coords4 unravel4(int64_t i, int64_t d1, int64_t d2, int64_t d3) {
  const int64_t i3 = i % d3, rest = i / d3;
  const int64_t i2 = rest % d2, outer = rest / d2;
  return {outer / d1, outer % d1, i2, i3};
}

}  // namespace residual::cuda
