// Concatenation along the last (channel) dimension.
#include <cstring>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {

void concat_forward(const std::vector<const Tensor*>& xs, Tensor& y) {
  const int64_t total = y.shape()[y.rank() - 1], rows = y.numel() / total;
  float* out = y.f32();
  int64_t offset = 0;
  for (const Tensor* x : xs) {
    const int64_t c = x->shape()[x->rank() - 1];
    const float* in = x->f32();
#pragma omp parallel for schedule(static) if (y.numel() >= kMinParallelElements)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * total + offset, in + r * c, sizeof(float) * c);
    offset += c;
  }
}

void concat_backward(const Tensor& dy, const std::vector<Tensor*>& dxs) {
  const int64_t total = dy.shape()[dy.rank() - 1], rows = dy.numel() / total;
  const float* g = dy.f32();
  int64_t offset = 0;
  for (Tensor* dx : dxs) {
    const int64_t c = dy.rank() ? (dx ? dx->shape()[dx->rank() - 1] : 0) : 0;
    if (dx) {
      float* out = dx->f32();
#pragma omp parallel for schedule(static) if (dy.numel() >= kMinParallelElements)
      for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * c, g + r * total + offset, sizeof(float) * c);
    }
    offset += c;
  }
}

}  // namespace residual::ops::cpu
