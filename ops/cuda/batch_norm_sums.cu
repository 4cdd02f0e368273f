// The pieces of synchronised batch normalisation on the GPU (ops/ops.h): the tensors are
// on the GPU, the sums are 2 * C doubles in host memory. Partial sums are reduced on the
// GPU in double and copied to the host (which waits for them: the caller adds them across
// ranks next); global sums go up to the GPU on the compute stream before the pass that
// reads them. The moments are 2 * C scalar operations, done on the host as the CPU twin
// does them and copied up.
#include <algorithm>
#include <vector>

#include "core/device_memory.h"
#include "core/error.h"
#include "ops/cuda/batch_norm_rows.cuh"
#include "ops/cuda/channel_rows.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

using cuda::can_vectorize;
using cuda::DeviceBuffer;
using cuda::Lanes;

// Plain sums of x and x^2, no shift, so that shards add up; a float squared is exact in
// double.
struct PlainSums {
  const float* x = nullptr;
  template <int V>
  __device__ int prepare(int64_t, int64_t) const {
    return 0;
  }
  template <int V>
  __device__ Lanes<V> load(int64_t o) const {
    return cuda::load_lanes<V>(x + o);
  }
  template <int V, class Acc>
  __device__ void consume(int, const Lanes<V>& in, int64_t, Acc& acc) const {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const double d = in.v[v];
      acc[0][v] += d;
      acc[1][v] += d * d;
    }
  }
};

// Writes the sums as ops.h lays them out: out[0, C) and out[C, 2C); the second scaled by
// 1 / sqrt(var + epsilon) when `var` is set (sum dy' * (x - mean) -> sum dy' * xhat).
struct WriteSums {
  double* out = nullptr;
  const float* var = nullptr;
  float epsilon = 0;
  int64_t channels = 0;
  __device__ void operator()(int64_t, int64_t c, const double (&s)[2]) const {
    out[c] = s[0];
    out[channels + c] = var ? s[1] * (1.0 / sqrt(static_cast<double>(var[c]) + epsilon)) : s[1];
  }
};

// Copies the 2 * C sums left in `device_sums` to the host; returns once they are there.
void sums_to_host(const DeviceBuffer& device_sums, Device device, int64_t c, double* sums) {
  device_copy(sums, Device::cpu(), device_sums.as<double>(), device, sizeof(double) * 2 * c);
}

}  // namespace

void batch_norm_partial_sums(const Tensor& x, double* sums) {
  const cuda::RowsShape shape = bn::rows_of(x);
  const int64_t c = shape.channels;
  if (shape.seg_rows == 0) {  // an empty shard adds nothing (and needs no GPU work)
    std::fill(sums, sums + 2 * c, 0.0);
    return;
  }
  const Device device = x.device();
  DeviceBuffer out(device, sizeof(double) * 2 * c);
  PlainSums op;
  op.x = x.device_f32();
  WriteSums finish;
  finish.out = out.as<double>();
  finish.channels = c;
  cuda::reduce_rows<2>(op, finish, can_vectorize(c, {op.x}), shape, device,
                       "batch_norm_partial_sums");
  sums_to_host(out, device, c, sums);
}

void batch_norm_moments(const double* sums, int64_t count, Tensor& mean, Tensor& var) {
  RESIDUAL_CHECK(count >= 1, "batch_norm_moments: the batch has ", count,
                 " rows, so it has no mean or variance");
  const int64_t c = mean.numel();
  if (c == 0) return;
  const double n = static_cast<double>(count);
  std::vector<float> m(static_cast<size_t>(c)), v(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) {
    const double mi = sums[i] / n;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(std::max(sums[c + i] / n - mi * mi, 0.0));
  }
  // From pageable host memory the copy has taken the data when it returns, so the
  // vectors may go; the GPU reads them in stream order.
  device_copy(mean.device_raw(), mean.device(), m.data(), Device::cpu(), sizeof(float) * c);
  device_copy(var.device_raw(), var.device(), v.data(), Device::cpu(), sizeof(float) * c);
}

void batch_norm_backward_partial_sums(const Tensor& x, const Tensor& y, const Tensor& dy,
                                      const Tensor& mean, const Tensor& var, float epsilon,
                                      bool relu, double* sums) {
  const cuda::RowsShape shape = bn::rows_of(x);
  const int64_t c = shape.channels;
  if (shape.seg_rows == 0) {
    std::fill(sums, sums + 2 * c, 0.0);
    return;
  }
  const Device device = x.device();
  DeviceBuffer out(device, sizeof(double) * 2 * c);
  const bn::BackwardSumsParams p = bn::backward_sums_params(x, y, dy, mean, relu);
  WriteSums finish;
  finish.out = out.as<double>();
  finish.var = var.device_f32();
  finish.epsilon = epsilon;
  finish.channels = c;
  const bool vectorize = can_vectorize(c, {p.x, p.y, p.dy});
  bn::with_relu<bn::BackwardSums>(relu, p, [&](const auto& op) {
    cuda::reduce_rows<2>(op, finish, vectorize, shape, device, "batch_norm_backward_partial_sums");
  });
  sums_to_host(out, device, c, sums);
}

void batch_norm_backward_apply(const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& mean, const Tensor& var,
                               float epsilon, bool relu, const double* sums, int64_t count,
                               Tensor& dx) {
  RESIDUAL_CHECK(count >= 1, "batch_norm_backward_apply: the batch has ", count, " rows");
  const cuda::RowsShape shape = bn::rows_of(x);
  const int64_t c = shape.channels;
  if (shape.seg_rows == 0) return;
  const Device device = x.device();
  DeviceBuffer device_sums(device, sizeof(double) * 2 * c);
  device_copy(device_sums.as<double>(), device, sums, Device::cpu(), sizeof(double) * 2 * c);
  bn::ApplyDxParams p;
  p.x = x.device_f32();
  p.y = relu ? y.device_f32() : nullptr;
  p.dy = dy.device_f32();
  p.dx = dx.device_f32();
  p.gamma = gamma.device_f32();
  p.mean = mean.device_f32();
  p.var = var.device_f32();
  p.sums = device_sums.as<double>();
  p.count = static_cast<double>(count);
  p.epsilon = epsilon;
  p.channels = c;
  const bool vectorize = can_vectorize(c, {p.x, p.y, p.dy, p.dx});
  bn::with_relu<bn::ApplyDx>(relu, p, [&](const auto& op) {
    cuda::apply_rows(op, vectorize, shape, device, "batch_norm_backward_apply");
  });
}

}  // namespace residual::ops::gpu
