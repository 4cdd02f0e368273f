// Concatenation along the last (channel) dimension on the GPU: one copy kernel per input,
// each reading its input contiguously and writing its column band of every output row.
// Per input rather than one kernel over a device array of pointers: no host-to-device
// transfer of the pointer list, and a concatenation has only a few inputs.
#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

// dst[r * dst_pitch + i] = src[r * src_pitch + i] for r < rows, i < width.
__global__ void copy_band_kernel(const float* __restrict__ src, int64_t src_pitch,
                                 float* __restrict__ dst, int64_t dst_pitch, int64_t rows,
                                 int64_t width) {
  const int64_t n = rows * width;
  for (int64_t e = cuda::first_index(); e < n; e += cuda::index_step()) {
    const int64_t r = e / width, i = e - r * width;
    dst[r * dst_pitch + i] = src[r * src_pitch + i];
  }
}

void copy_band(const float* src, int64_t src_pitch, float* dst, int64_t dst_pitch, int64_t rows,
               int64_t width, cudaStream_t stream, const char* op) {
  if (rows == 0 || width == 0) return;
  copy_band_kernel<<<cuda::grid_for(rows * width), cuda::kThreadsPerBlock, 0, stream>>>(
      src, src_pitch, dst, dst_pitch, rows, width);
  cuda::check_launch(op);
}

int64_t last_dim(const Tensor& t) { return t.rank() ? t.shape()[t.rank() - 1] : 1; }

}  // namespace

void concat_forward(const std::vector<const Tensor*>& xs, Tensor& y) {
  const int64_t total = last_dim(y);
  if (y.numel() == 0 || total == 0) return;
  const int64_t rows = y.numel() / total;
  cuda::DeviceGuard guard(y.device().index);
  const cudaStream_t stream = cuda::stream_of(y);
  int64_t offset = 0;
  for (const Tensor* x : xs) {
    const int64_t c = last_dim(*x);
    RESIDUAL_CHECK(x->numel() == rows * c && offset + c <= total, "concat_forward: input ",
                   x->shape().str(), " does not fit output ", y.shape().str());
    copy_band(x->device_f32(), c, y.device_f32() + offset, total, rows, c, stream,
              "concat_forward");
    offset += c;
  }
}

void concat_backward(const Tensor& dy, const std::vector<Tensor*>& dxs) {
  const int64_t total = last_dim(dy);
  if (dy.numel() == 0 || total == 0) return;
  const int64_t rows = dy.numel() / total;
  cuda::DeviceGuard guard(dy.device().index);
  const cudaStream_t stream = cuda::stream_of(dy);
  int64_t offset = 0;
  for (Tensor* dx : dxs) {
    // As the CPU kernel: a null gradient takes no columns (callers pass every input's).
    if (!dx) continue;
    const int64_t c = last_dim(*dx);
    RESIDUAL_CHECK(dx->numel() == rows * c && offset + c <= total, "concat_backward: gradient ",
                   dx->shape().str(), " does not fit ", dy.shape().str());
    copy_band(dy.device_f32() + offset, total, dx->device_f32(), c, rows, c, stream,
              "concat_backward");
    offset += c;
  }
}

}  // namespace residual::ops::gpu
