// Whole-tensor reductions and scaling on a GPU (the CPU twin is ops/cpu/reduce.cpp), and
// the fixed-order sum that other kernels' partial sums end in (ops/cuda/reduce.cuh).
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/reduce.cuh"

namespace residual {
namespace cuda {
namespace {

__global__ void sum_kernel(const double* values, int64_t count, double* result) {
  double sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += values[i];
  const double total = block_sum(sum);
  if (threadIdx.x == 0) *result = total;
}

}  // namespace

void sum_in_fixed_order(const double* values, int64_t count, double* result, cudaStream_t stream) {
  sum_kernel<<<1, kReduceThreads, 0, stream>>>(values, count, result);
  check_launch("sum_kernel");
}

}  // namespace cuda

namespace ops::gpu {
namespace {

// One partial sum of squares per block, in double (as the CPU twin accumulates).
__global__ void squared_partials_kernel(const float* x, int64_t n, double* partials) {
  double sum = 0;
  for (int64_t i = cuda::first_index(); i < n; i += cuda::index_step()) {
    const double v = x[i];
    sum += v * v;
  }
  const double total = cuda::block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void scale_kernel(float* x, int64_t n, float factor) {
  for (int64_t i = cuda::first_index(); i < n; i += cuda::index_step()) {
    x[i] *= factor;
  }
}

}  // namespace

double squared_norm(const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return 0;
  const float* data = x.device_f32();
  cuda::DeviceGuard guard(x.device().index);
  const cudaStream_t stream = cuda::stream_of(x);
  const unsigned blocks = cuda::reduce_blocks(n);
  // partials[0, blocks), then the total.
  cuda::Scratch scratch(x.device(), (blocks + 1) * sizeof(double));
  double* partials = scratch.as<double>();
  squared_partials_kernel<<<blocks, cuda::kReduceThreads, 0, stream>>>(data, n, partials);
  cuda::check_launch("squared_partials_kernel");
  cuda::sum_in_fixed_order(partials, blocks, partials + blocks, stream);
  double total = 0;
  device_copy(&total, Device::cpu(), partials + blocks, x.device(), sizeof(double));
  return total;
}

void scale_inplace(Tensor& x, float factor) {
  const int64_t n = x.numel();
  if (n == 0) return;
  float* data = x.device_f32();
  cuda::DeviceGuard guard(x.device().index);
  scale_kernel<<<cuda::grid_for(n), cuda::kThreadsPerBlock, 0, cuda::stream_of(x)>>>(data, n,
                                                                                     factor);
  cuda::check_launch("scale_kernel");
}

}  // namespace ops::gpu
}  // namespace residual
