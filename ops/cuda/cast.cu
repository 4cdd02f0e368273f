// float32 <-> bfloat16 on a GPU (the CPU twin is ops/cpu/cast.cpp): CUDA's own
// conversions, round to nearest even as oneDNN's, NaN kept a NaN.
#include <cuda_bf16.h>

#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

__global__ void to_bf16_kernel(const float* src, __nv_bfloat16* dst, int64_t n) {
  for (int64_t i = cuda::first_index(); i < n; i += cuda::index_step()) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

__global__ void to_f32_kernel(const __nv_bfloat16* src, float* dst, int64_t n) {
  for (int64_t i = cuda::first_index(); i < n; i += cuda::index_step()) {
    dst[i] = __bfloat162float(src[i]);
  }
}

}  // namespace

void cast(const Tensor& src, Tensor& dst) {
  RESIDUAL_CHECK(src.numel() == dst.numel(), "cast: ", src.numel(), " elements into ",
                 dst.numel());
  const int64_t n = src.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(src.device().index);
  const auto f32 = DType::kFloat32, bf16 = DType::kBFloat16;
  if (src.dtype() == f32 && dst.dtype() == bf16) {
    to_bf16_kernel<<<cuda::grid_for(n), cuda::kThreadsPerBlock, 0, cuda::stream_of(src)>>>(
        src.device_data<float>(), dst.device_data<__nv_bfloat16>(), n);
    cuda::check_launch("to_bf16_kernel");
  } else if (src.dtype() == bf16 && dst.dtype() == f32) {
    to_f32_kernel<<<cuda::grid_for(n), cuda::kThreadsPerBlock, 0, cuda::stream_of(src)>>>(
        src.device_data<__nv_bfloat16>(), dst.device_data<float>(), n);
    cuda::check_launch("to_f32_kernel");
  } else {
    fail("cast: ", dtype_name(src.dtype()), " to ", dtype_name(dst.dtype()),
         " is not float32 <-> bfloat16");
  }
}

}  // namespace residual::ops::gpu
