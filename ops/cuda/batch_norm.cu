// Batch normalisation on the GPU, fused single-process form (the split pieces of
// synchronised BN are in batch_norm_sums.cu). Channels last: each pass is a walk over
// rows with threads on consecutive channels (ops/cuda/channel_rows.cuh). The training
// forward is statistics (per-block partials, combined in a fixed order) then one
// normalising pass; the backward is the two sums then one pass writing dx.
#include "core/error.h"
#include "ops/cuda/batch_norm_rows.cuh"
#include "ops/cuda/channel_rows.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

using cuda::can_vectorize;
using cuda::DeviceBuffer;

__global__ void update_running_kernel(const float* batch_mean, const float* batch_var,
                                      double unbias, float momentum, float* running_mean,
                                      float* running_var, int64_t n) {
  for (int64_t i = cuda::first_index(); i < n; i += cuda::index_step()) {
    // The CPU twin's expressions and precisions (momentum * running is a float product).
    running_mean[i] =
        static_cast<float>(momentum * running_mean[i] + (1.0 - momentum) * batch_mean[i]);
    running_var[i] =
        static_cast<float>(momentum * running_var[i] + (1.0 - momentum) * batch_var[i] * unbias);
  }
}

// The backward's statistics half: dgamma, dbeta and dx's coefficients from the sums.
struct FusedBackwardFinish {
  const float *gamma = nullptr, *mean = nullptr, *var = nullptr;
  float *dgamma = nullptr, *dbeta = nullptr, *coef = nullptr;
  double rows = 0;
  float epsilon = 0;
  int64_t channels = 0;
  __device__ void operator()(int64_t, int64_t c, const double (&s)[2]) const {
    // dx = gamma * is * (dy' - mean(dy') - xhat * mean(dy' * xhat))
    //    = k_dy * dy' + k_x * x + k_0, with s = (sum dy', sum dy' * (x - mean)).
    const double g = gamma[c];
    const double is = 1.0 / sqrt(static_cast<double>(var[c]) + epsilon);
    dgamma[c] = static_cast<float>(s[1] * is);
    dbeta[c] = static_cast<float>(s[0]);
    const double kx = -g * is * is * is * s[1] / rows;
    coef[c] = static_cast<float>(g * is);
    coef[channels + c] = static_cast<float>(kx);
    coef[2 * channels + c] = static_cast<float>(-g * is * s[0] / rows - kx * mean[c]);
  }
};

}  // namespace

void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                 Tensor& batch_var) {
  const cuda::RowsShape shape = bn::rows_of(x);
  RESIDUAL_CHECK(shape.seg_rows > 0,
                 "batch_norm_forward_training: the batch has no rows, so it "
                 "has no statistics (the layer skips empty batches)");
  const int64_t c = shape.channels;
  const Device device = x.device();
  DeviceBuffer coef(device, sizeof(float) * 2 * c);

  bn::ShiftedSums sums;
  sums.x = x.device_f32();
  bn::TrainingFinish finish;
  finish.x = sums.x;
  finish.gamma = gamma.device_f32();
  finish.beta = beta.device_f32();
  finish.mean = batch_mean.device_f32();
  finish.var = batch_var.device_f32();
  finish.coef = coef.as<float>();
  finish.rows = static_cast<double>(shape.seg_rows);
  finish.epsilon = epsilon;
  finish.channels = c;
  cuda::reduce_rows<2>(sums, finish, can_vectorize(c, {sums.x}), shape, device,
                       "batch_norm_forward_training (statistics)");

  bn::NormalizeParams p;
  p.x = sums.x;
  p.y = y.device_f32();
  p.coef = coef.as<float>();
  p.channels = c;
  const bool vectorize = can_vectorize(c, {p.x, p.y});
  bn::with_relu<bn::Normalize>(relu, p, [&](const auto& op) {
    cuda::apply_rows(op, vectorize, shape, device, "batch_norm_forward_training (normalise)");
  });
}

void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& var, float epsilon, bool relu,
                                  Tensor& y) {
  const cuda::RowsShape shape = bn::rows_of(x);
  if (shape.seg_rows == 0) return;
  bn::NormalizeParams p;
  p.x = x.device_f32();
  p.y = y.device_f32();
  p.gamma = gamma.device_f32();
  p.beta = beta.device_f32();
  p.mean = mean.device_f32();
  p.var = var.device_f32();
  p.epsilon = epsilon;
  p.channels = shape.channels;
  const bool vectorize = can_vectorize(shape.channels, {p.x, p.y});
  bn::with_relu<bn::Normalize>(relu, p, [&](const auto& op) {
    cuda::apply_rows(op, vectorize, shape, x.device(), "batch_norm_forward_inference");
  });
}

void batch_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& gamma,
                         const Tensor& batch_mean, const Tensor& batch_var, float epsilon,
                         bool relu, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const cuda::RowsShape shape = bn::rows_of(x);
  const int64_t c = shape.channels;
  if (c == 0) return;
  if (shape.seg_rows == 0) {  // sums over no rows (the CPU twin writes the same zeros)
    dgamma.zero();
    dbeta.zero();
    return;
  }
  const Device device = x.device();
  DeviceBuffer coef(device, sizeof(float) * 3 * c);
  const bn::BackwardSumsParams sums = bn::backward_sums_params(x, y, dy, batch_mean, relu);
  FusedBackwardFinish finish;
  finish.gamma = gamma.device_f32();
  finish.mean = sums.mean;
  finish.var = batch_var.device_f32();
  finish.dgamma = dgamma.device_f32();
  finish.dbeta = dbeta.device_f32();
  finish.coef = coef.as<float>();
  finish.rows = static_cast<double>(shape.seg_rows);
  finish.epsilon = epsilon;
  finish.channels = c;
  const bool sums_vectorize = can_vectorize(c, {sums.x, sums.y, sums.dy});
  bn::with_relu<bn::BackwardSums>(relu, sums, [&](const auto& op) {
    cuda::reduce_rows<2>(op, finish, sums_vectorize, shape, device, "batch_norm_backward (sums)");
  });

  bn::ApplyDxParams p;
  p.x = sums.x;
  p.y = sums.y;
  p.dy = sums.dy;
  p.dx = dx.device_f32();
  p.coef = coef.as<float>();
  p.channels = c;
  const bool vectorize = can_vectorize(c, {p.x, p.y, p.dy, p.dx});
  bn::with_relu<bn::ApplyDx>(relu, p, [&](const auto& op) {
    cuda::apply_rows(op, vectorize, shape, device, "batch_norm_backward (dx)");
  });
}

void batch_norm_update_running(const Tensor& batch_mean, const Tensor& batch_var, int64_t count,
                               float momentum, Tensor& running_mean, Tensor& running_var) {
  const int64_t n = batch_mean.numel();
  if (n == 0) return;
  const double unbias = count > 1 ? static_cast<double>(count) / (count - 1) : 1.0;
  cuda::DeviceGuard guard(batch_mean.device().index);
  update_running_kernel<<<cuda::grid_for(n), cuda::kThreadsPerBlock, 0,
                          cuda::stream_of(batch_mean)>>>(
      batch_mean.device_f32(), batch_var.device_f32(), unbias, momentum, running_mean.device_f32(),
      running_var.device_f32(), n);
  cuda::check_launch("batch_norm_update_running");
}

}  // namespace residual::ops::gpu
