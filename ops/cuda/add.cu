// Sum of same-shaped tensors on the GPU in one pass per kMaxInputs inputs (the CPU twin
// sums in blocks): y = ((x0 + x1) + x2) + ..., added left to right in float as the CPU,
// so both round alike; a fused ReLU applies in the last pass.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "ops/cuda/channel_rows.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/elementwise.cuh"

namespace residual::ops::gpu {
namespace {

constexpr int kMaxInputs = 8;

// out = (start ? out : x[0]) + the remaining inputs. Passed by value as a kernel
// parameter (8 pointers: well inside the parameter limit).
struct AddInputs {
  const float* x[kMaxInputs];
  int count;
  bool accumulate;  // out already holds the sum of earlier inputs
  bool relu;        // this pass is the last: store max(sum, 0)
  float* out;
  template <int V>
  __device__ void apply(int64_t i) const {
    int first = 0;
    cuda::Lanes<V> sum;
    if (accumulate) {
      sum = cuda::load_lanes<V>(out + i);
    } else {
      sum = cuda::load_lanes<V>(x[0] + i);
      first = 1;
    }
    // Unrolled, so each x[k] is a fixed parameter slot rather than a dynamic index.
#pragma unroll
    for (int k = 0; k < kMaxInputs; ++k) {
      if (k < first || k >= count) continue;
      const cuda::Lanes<V> t = cuda::load_lanes<V>(x[k] + i);
#pragma unroll
      for (int v = 0; v < V; ++v) sum.v[v] += t.v[v];
    }
    if (relu) {
#pragma unroll
      for (int v = 0; v < V; ++v) sum.v[v] = sum.v[v] > 0.f ? sum.v[v] : 0.f;
    }
    cuda::store_lanes<V>(out + i, sum);
  }
};

}  // namespace

void add_forward(const std::vector<const Tensor*>& xs, bool relu, Tensor& y) {
  RESIDUAL_CHECK(!xs.empty(), "add_forward: no inputs");
  const int64_t n = y.numel();
  if (n == 0) return;
  const Device device = y.device();
  float* out = y.device_f32();
  if (xs.size() == 1 && !relu) {
    cuda::copy_on_device(out, xs[0]->device_f32(), n, device);
    return;
  }
  for (size_t begin = 0; begin < xs.size();) {
    AddInputs op{};
    op.accumulate = begin > 0;
    op.out = out;
    // The first pass takes kMaxInputs inputs; later passes kMaxInputs - 1 more each
    // (out is their first term), so every pass reads at most kMaxInputs tensors.
    const size_t take =
        std::min(xs.size() - begin, static_cast<size_t>(kMaxInputs) - (op.accumulate ? 1 : 0));
    op.count = static_cast<int>(take);
    op.relu = relu && begin + take == xs.size();
    bool aligned = cuda::aligned16(out);
    for (size_t k = 0; k < take; ++k) {
      op.x[k] = xs[begin + k]->device_f32();
      aligned = aligned && cuda::aligned16(op.x[k]);
    }
    cuda::launch_flat(op, n, aligned, device, "add_forward");
    begin += take;
  }
}

}  // namespace residual::ops::gpu
