#pragma once
// Deterministic reductions for the CUDA kernels (reduce.cu, loss.cu, ...): sums in double
// whose order depends on the element count alone, never on timing or on the GPU model,
// so the same inputs give bit-identical sums run to run (no floating-point atomics).
// The pattern is two passes: kernels write one partial sum per block (block_sum), then
// sum_in_fixed_order adds the partials in one block. For .cu files only.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/device.h"
#include "core/device_memory.h"
#include "ops/cuda/common.cuh"

namespace residual::cuda {

// Block size of every kernel that calls block_sum, and the most blocks a first pass
// launches (more would only make the second pass longer).
constexpr int kReduceThreads = 256;
constexpr int kMaxReduceBlocks = 1024;

// Blocks of a first pass over `n` elements: a function of n alone (the partial sums,
// and so the result, must not depend on the GPU it runs on).
inline unsigned reduce_blocks(int64_t n) {
  const int64_t blocks = (n + kReduceThreads - 1) / kReduceThreads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxReduceBlocks));
}

// The sum of `value` over a block of kReduceThreads threads, as a fixed tree, returned to
// every thread. Every thread of the block must call it (it synchronises the block).
__device__ inline double block_sum(double value) {
  __shared__ double shared[kReduceThreads];
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // before a next call overwrites `shared`
  return total;
}

// Queues on `stream` the sum of values[0, count) (device memory) in a fixed order into
// *result (device memory). NaN and Inf propagate as in any sum.
void sum_in_fixed_order(const double* values, int64_t count, double* result, cudaStream_t stream);

// Device memory from the caching allocator for the temporaries of one op call. Freeing it
// at the end of the call is safe while kernels queued on the GPU's compute stream still
// use it: the allocator hands the block out again only to work on that same stream,
// which runs after them.
class Scratch {
 public:
  Scratch(Device device, size_t bytes)
      : device_(device), ptr_(bytes > 0 ? device_alloc(device, bytes) : nullptr) {}
  ~Scratch() {
    if (ptr_) device_free(device_, ptr_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  template <typename T>
  T* as(size_t offset_bytes = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(ptr_) + offset_bytes);
  }

 private:
  Device device_;
  void* ptr_;
};

}  // namespace residual::cuda
