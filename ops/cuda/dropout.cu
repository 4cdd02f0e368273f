// Inverted dropout on the GPU: the mask is ops/dropout_mask.h's, the CPU's own function,
// so both backends drop the same elements for a (seed, element index) and a run moved
// between them (or resumed on the other) draws the same masks.
#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/dropout_mask.h"

namespace residual::ops::gpu {
namespace {

__global__ void apply_mask_kernel(float rate, float scale, uint64_t seed, int64_t first,
                                  const float* __restrict__ in, float* __restrict__ out,
                                  int64_t n) {
  for (int64_t i = cuda::first_index(); i < n; i += cuda::index_step()) {
    out[i] = dropout_keep(rate, seed, first + i) ? in[i] * scale : 0.f;
  }
}

void apply_mask(float rate, uint64_t seed, int64_t first, const Tensor& in, Tensor& out,
                const char* op) {
  const int64_t n = in.numel();
  RESIDUAL_CHECK(out.numel() == n, op, ": output has ", out.numel(), " elements, input ", n);
  if (n == 0) return;
  cuda::DeviceGuard guard(in.device().index);
  // The scale is computed on the host, as the CPU kernel does, so kept values match too.
  apply_mask_kernel<<<cuda::grid_for(n), cuda::kThreadsPerBlock, 0, cuda::stream_of(in)>>>(
      rate, dropout_scale(rate), seed, first, in.device_f32(), out.device_f32(), n);
  cuda::check_launch(op);
}

}  // namespace

void dropout_forward(float rate, uint64_t seed, const Tensor& x, Tensor& y, int64_t first_element) {
  apply_mask(rate, seed, first_element, x, y, "dropout_forward");
}

void dropout_backward(float rate, uint64_t seed, const Tensor& dy, Tensor& dx,
                      int64_t first_element) {
  apply_mask(rate, seed, first_element, dy, dx, "dropout_backward");
}

}  // namespace residual::ops::gpu
