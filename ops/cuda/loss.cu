// Losses with their gradient in one pass on a GPU; the numerics follow the CPU twin
// (ops/cpu/loss.cpp) step for step: the row maximum subtracted in float, exponentials,
// log-sum-exp and per-sample losses in double, the gradient rounded to float once.
// The mean loss is a double sum in a fixed order (ops/cuda/reduce.cuh), copied to the
// host: the one synchronisation of each call. An empty batch has loss 0, writes nothing
// and synchronises nothing.
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/reduce.cuh"

namespace residual::ops::gpu {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = cuda::kThreadsPerBlock / kWarp;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr unsigned long long kNoBadLabel = std::numeric_limits<unsigned long long>::max();

// Butterfly reductions: every lane ends with the same value, and the order of the
// additions is fixed, so the result is the same every run.
__device__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

__device__ double warp_sum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// One warp per row (K is the class count: 10 to a few thousand). A label out of [0, K)
// is recorded (the lowest such row, as the CPU reports the first) and treated as no
// class, so the kernel never reads out of bounds; the host then throws.
__global__ void softmax_cross_entropy_kernel(const float* z, const int32_t* labels, int64_t n,
                                             int64_t k, double on, double off, double scale,
                                             float* d, double* losses,
                                             unsigned long long* first_bad) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  // `row` is the same for all lanes of a warp, so every shuffle has all 32 lanes.
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; row < n;
       row += warps) {
    const float* zi = z + row * k;
    float* di = d + row * k;
    const int64_t label = labels[row];
    if (lane == 0 && (label < 0 || label >= k)) {
      atomicMin(first_bad, static_cast<unsigned long long>(row));
    }
    float top = -INFINITY;
    for (int64_t j = lane; j < k; j += kWarp) top = fmaxf(top, zi[j]);
    top = warp_max(top);
    double total = 0, weighted = 0;
    for (int64_t j = lane; j < k; j += kWarp) {
      const float shifted = zi[j] - top;
      total += exp(static_cast<double>(shifted));
      weighted += (j == label ? on : off) * shifted;
    }
    total = warp_sum(total);
    weighted = warp_sum(weighted);
    if (lane == 0) losses[row] = log(total) - weighted;
    for (int64_t j = lane; j < k; j += kWarp) {
      const double p = exp(static_cast<double>(zi[j] - top)) / total;
      di[j] = static_cast<float>((p - (j == label ? on : off)) * scale);
    }
  }
}

// Element-wise, with one partial loss sum per block (cuda::block_sum).
__global__ void sigmoid_binary_cross_entropy_kernel(const float* z, const float* t, int64_t count,
                                                    double scale, float* d, double* partials) {
  double sum = 0;
  for (int64_t i = cuda::first_index(); i < count; i += cuda::index_step()) {
    const double zi = z[i];
    const float ti = t[i];
    // max(z, 0) - z t + log(1 + exp(-|z|)): finite for any z (the CPU's formulation).
    sum += (zi < 0.0 ? 0.0 : zi) - zi * ti + log1p(exp(-fabs(zi)));
    d[i] = static_cast<float>((1.0 / (1.0 + exp(-zi)) - ti) * scale);
  }
  const double total = cuda::block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

}  // namespace

double softmax_cross_entropy(const Tensor& logits, const Tensor& labels, float label_smoothing,
                             Tensor& dlogits, double grad_scale) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  if (n == 0) return 0;
  RESIDUAL_CHECK(labels.dtype() == DType::kInt32,
                 "softmax_cross_entropy: labels must be int32, got ", dtype_name(labels.dtype()));
  if (grad_scale == 0) grad_scale = 1.0 / n;
  // The CPU twin's expressions (label_smoothing / k is a float division there too).
  const double off = label_smoothing / k, on = 1.0 - label_smoothing + off;
  const Device device = logits.device();
  cuda::DeviceGuard guard(device.index);
  const cudaStream_t stream = cuda::stream_of(logits);

  // losses[0, n), then the sum and the first bad row: the last two read back in one copy.
  const size_t tail = static_cast<size_t>(n) * sizeof(double);
  cuda::Scratch scratch(device, tail + sizeof(double) + sizeof(unsigned long long));
  double* losses = scratch.as<double>();
  auto* first_bad = scratch.as<unsigned long long>(tail + sizeof(double));
  cuda::check(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), stream),
              "cudaMemsetAsync (bad label marker)");
  const unsigned blocks = cuda::grid_for(n, kRowsPerBlock);
  softmax_cross_entropy_kernel<<<blocks, kRowsPerBlock * kWarp, 0, stream>>>(
      logits.device_f32(), labels.device_data<int32_t>(), n, k, on, off, grad_scale,
      dlogits.device_f32(), losses, first_bad);
  cuda::check_launch("softmax_cross_entropy_kernel");
  cuda::sum_in_fixed_order(losses, n, losses + n, stream);

  struct {
    double sum;
    unsigned long long first_bad;
  } result{};
  static_assert(sizeof(result) == sizeof(double) + sizeof(unsigned long long));
  device_copy(&result, Device::cpu(), losses + n, device, sizeof(result));
  if (result.first_bad != kNoBadLabel) {
    const auto row = static_cast<int64_t>(result.first_bad);
    int32_t label = 0;
    device_copy(&label, Device::cpu(), labels.device_data<int32_t>() + row, device, sizeof(label));
    fail("label ", label, " of sample ", row, " is out of range for ", k, " classes");
  }
  return result.sum / n;
}

double sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& targets, Tensor& dlogits,
                                    double grad_scale) {
  const int64_t count = logits.numel();
  if (count == 0) return 0;
  if (grad_scale == 0) grad_scale = 1.0 / count;
  const Device device = logits.device();
  cuda::DeviceGuard guard(device.index);
  const cudaStream_t stream = cuda::stream_of(logits);
  const unsigned blocks = cuda::reduce_blocks(count);
  // partials[0, blocks), then the total.
  cuda::Scratch scratch(device, (blocks + 1) * sizeof(double));
  double* partials = scratch.as<double>();
  sigmoid_binary_cross_entropy_kernel<<<blocks, cuda::kReduceThreads, 0, stream>>>(
      logits.device_f32(), targets.device_f32(), count, grad_scale, dlogits.device_f32(), partials);
  cuda::check_launch("sigmoid_binary_cross_entropy_kernel");
  cuda::sum_in_fixed_order(partials, blocks, partials + blocks, stream);
  double sum = 0;
  device_copy(&sum, Device::cpu(), partials + blocks, device, sizeof(sum));
  return sum / count;
}

}  // namespace residual::ops::gpu
