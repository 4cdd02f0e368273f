// Batch normalisation (per last-dimension channel, optional fused ReLU): the fused
// single-process kernels against the double reference of tests/ops/batch_norm_reference.h,
// on every device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/batch_norm_reference.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using bn_ref::kEpsilon;
using op_test::on;
using ref::Expected;

// Param: (case, device); see bn_ref::BatchNormDeviceFixture.
class BatchNormTest : public bn_ref::BatchNormDeviceFixture {};

TEST_P(BatchNormTest, TrainingForward) {
  SKIP_WITHOUT_KERNEL(ops::batch_norm_forward_training, device_);
  Tensor y = nan_output(shape_), mean = nan_output(Shape{c_}), var = nan_output(Shape{c_});
  ops::batch_norm_forward_training(x_on_, gamma_on_, beta_on_, kEpsilon, relu_, y, mean, var);

  EXPECT_TRUE(ref::matches(y, want_y())) << "y";
  EXPECT_TRUE(ref::matches(mean, want_mean())) << "batch mean";
  EXPECT_TRUE(ref::matches(var, want_var())) << "batch variance";
}

TEST_P(BatchNormTest, InferenceForward) {
  SKIP_WITHOUT_KERNEL(ops::batch_norm_forward_inference, device_);
  ref::Rng rng(5);
  Tensor running_mean = ref::uniform_tensor(Shape{c_}, rng, 1.5f, 2.5f);
  Tensor running_var = ref::uniform_tensor(Shape{c_}, rng, 0.2f, 2.f);
  Tensor y = nan_output(shape_);
  ops::batch_norm_forward_inference(x_on_, gamma_on_, beta_on_, on(device_, running_mean),
                                    on(device_, running_var), kEpsilon, relu_, y);
  Expected want(shape_.numel());
  for (int64_t i = 0; i < shape_.numel(); ++i) {
    const int64_t c = i % c_;
    const double x = x_.f32()[i], m = running_mean.f32()[c];
    const double s = gamma_.f32()[c] / std::sqrt(static_cast<double>(running_var.f32()[c]) +
                                                 kEpsilon);
    const double v = (x - m) * s + beta_.f32()[c];
    want.value[i] = relu_ ? std::max(v, 0.0) : v;
    want.scale[i] = (std::abs(x) + std::abs(m)) * std::abs(s) + std::abs(beta_.f32()[c]);
  }
  EXPECT_TRUE(ref::matches(y, want));
}

TEST_P(BatchNormTest, Backward) {
  SKIP_WITHOUT_KERNEL(ops::batch_norm_forward_training, device_);
  SKIP_WITHOUT_KERNEL(ops::batch_norm_backward, device_);
  Tensor y = nan_output(shape_), mean = nan_output(Shape{c_}), var = nan_output(Shape{c_});
  ops::batch_norm_forward_training(x_on_, gamma_on_, beta_on_, kEpsilon, relu_, y, mean, var);
  Tensor dx = nan_output(shape_), dgamma = nan_output(Shape{c_}), dbeta = nan_output(Shape{c_});
  ops::batch_norm_backward(x_on_, y, dy_on_, gamma_on_, mean, var, kEpsilon, relu_, dx, dgamma,
                           dbeta);

  const std::vector<double> g = masked_dy(y);
  const auto [want_dgamma, want_dbeta] = want_dgamma_dbeta(g, mean, var);
  EXPECT_TRUE(ref::matches(dx, want_dx(g))) << "dx";
  EXPECT_TRUE(ref::matches(dgamma, want_dgamma)) << "dgamma";
  EXPECT_TRUE(ref::matches(dbeta, want_dbeta)) << "dbeta";
}

// The same bits from two runs of an op: a bfloat16 x against the float32 x of the same
// values.
::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() == b.shape() && a.dtype() == b.dtype() &&
      std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "the bf16-input result differs from the float32 one";
}

// On the CPU, x may be bfloat16 (a convolution's output under mixed precision): every
// batch-norm op must then compute exactly what it computes for a float32 x holding the
// same values (widening bf16 is exact), down to the last bit.
TEST_P(BatchNormTest, Bf16InputGivesTheFloat32ResultsOfItsValues) {
  if (!device_.is_cpu()) GTEST_SKIP() << "bf16 inputs are read on the CPU only";
  const Tensor x32 = ref::bf16_rounded(x_);
  Tensor x16;
  ops::cast_to(DType::kBFloat16, x32, x16);
  Tensor y[2], mean[2], var[2], dx[2], dgamma[2], dbeta[2], yi[2], dxs[2];
  std::vector<double> sums[2], back_sums[2];
  const Tensor* xs[2] = {&x32, &x16};
  for (int k = 0; k < 2; ++k) {
    const Tensor& x = *xs[k];
    y[k] = Tensor::empty(shape_), mean[k] = Tensor::empty(Shape{c_});
    var[k] = Tensor::empty(Shape{c_});
    ops::batch_norm_forward_training(x, gamma_, beta_, kEpsilon, relu_, y[k], mean[k], var[k]);
    dx[k] = Tensor::empty(shape_), dgamma[k] = Tensor::empty(Shape{c_});
    dbeta[k] = Tensor::empty(Shape{c_});
    ops::batch_norm_backward(x, y[k], dy_, gamma_, mean[k], var[k], kEpsilon, relu_, dx[k],
                             dgamma[k], dbeta[k]);
    yi[k] = Tensor::empty(shape_);
    ops::batch_norm_forward_inference(x, gamma_, beta_, mean[0], var[0], kEpsilon, relu_, yi[k]);
    sums[k].assign(static_cast<size_t>(2 * c_), 0.0);
    ops::batch_norm_partial_sums(x, sums[k].data());
    back_sums[k].assign(static_cast<size_t>(2 * c_), 0.0);
    ops::batch_norm_backward_partial_sums(x, y[0], dy_, mean[0], var[0], kEpsilon, relu_,
                                          back_sums[k].data());
    dxs[k] = Tensor::empty(shape_);
    ops::batch_norm_backward_apply(x, y[0], dy_, gamma_, mean[0], var[0], kEpsilon, relu_,
                                   back_sums[0].data(), shape_.numel() / c_, dxs[k]);
  }
  EXPECT_TRUE(same_bits(y[1], y[0])) << "training forward y";
  EXPECT_TRUE(same_bits(mean[1], mean[0])) << "batch mean";
  EXPECT_TRUE(same_bits(var[1], var[0])) << "batch variance";
  EXPECT_TRUE(same_bits(dx[1], dx[0])) << "dx";
  EXPECT_TRUE(same_bits(dgamma[1], dgamma[0])) << "dgamma";
  EXPECT_TRUE(same_bits(dbeta[1], dbeta[0])) << "dbeta";
  EXPECT_TRUE(same_bits(yi[1], yi[0])) << "inference forward";
  EXPECT_EQ(sums[1], sums[0]) << "partial sums";
  EXPECT_EQ(back_sums[1], back_sums[0]) << "backward partial sums";
  EXPECT_TRUE(same_bits(dxs[1], dxs[0])) << "backward apply";
}

// Under mixed precision y may be a bf16 activation too: the forward rounds its float32
// result once (the cast's round-to-nearest-even), and the backward's ReLU mask reads the
// stored bf16 y exactly as it would read those values in float32.
TEST_P(BatchNormTest, Bf16OutputIsTheRoundedFloat32Output) {
  if (!device_.is_cpu()) GTEST_SKIP() << "bf16 activations are written on the CPU only";
  Tensor y32 = Tensor::empty(shape_), mean = Tensor::empty(Shape{c_});
  Tensor var = Tensor::empty(Shape{c_});
  Tensor y16 = Tensor::empty(shape_, Device::cpu(), DType::kBFloat16), want16;
  ops::batch_norm_forward_training(x_, gamma_, beta_, kEpsilon, relu_, y32, mean, var);
  ops::batch_norm_forward_training(x_, gamma_, beta_, kEpsilon, relu_, y16, mean, var);
  ops::cast_to(DType::kBFloat16, y32, want16);
  EXPECT_TRUE(same_bits(y16, want16)) << "training forward";
  ops::batch_norm_forward_inference(x_, gamma_, beta_, mean, var, kEpsilon, relu_, y16);
  ops::batch_norm_forward_inference(x_, gamma_, beta_, mean, var, kEpsilon, relu_, y32);
  ops::cast_to(DType::kBFloat16, y32, want16);
  EXPECT_TRUE(same_bits(y16, want16)) << "inference forward";
  Tensor y16_read;
  ops::cast_to(DType::kFloat32, y16, y16_read);
  const Tensor* ys[2] = {&y16_read, &y16};
  Tensor dx[2], dgamma[2], dbeta[2], dxs[2];
  std::vector<double> back_sums[2];
  for (int k = 0; k < 2; ++k) {
    dx[k] = Tensor::empty(shape_), dgamma[k] = Tensor::empty(Shape{c_});
    dbeta[k] = Tensor::empty(Shape{c_});
    ops::batch_norm_backward(x_, *ys[k], dy_, gamma_, mean, var, kEpsilon, relu_, dx[k],
                             dgamma[k], dbeta[k]);
    back_sums[k].assign(static_cast<size_t>(2 * c_), 0.0);
    ops::batch_norm_backward_partial_sums(x_, *ys[k], dy_, mean, var, kEpsilon, relu_,
                                          back_sums[k].data());
    dxs[k] = Tensor::empty(shape_);
    ops::batch_norm_backward_apply(x_, *ys[k], dy_, gamma_, mean, var, kEpsilon, relu_,
                                   back_sums[0].data(), shape_.numel() / c_, dxs[k]);
  }
  EXPECT_TRUE(same_bits(dx[1], dx[0])) << "dx";
  EXPECT_TRUE(same_bits(dgamma[1], dgamma[0])) << "dgamma";
  EXPECT_TRUE(same_bits(dbeta[1], dbeta[0])) << "dbeta";
  EXPECT_EQ(back_sums[1], back_sums[0]) << "backward partial sums";
  EXPECT_TRUE(same_bits(dxs[1], dxs[0])) << "backward apply";
}

// A bf16 activation has a bf16 gradient: dy may be bf16 (read as the float32 of its
// values, bit for bit) and dx may be bf16 (the float32 dx rounded once, bit for bit).
TEST_P(BatchNormTest, Bf16GradientsAreTheFloat32OnesOfTheirValues) {
  if (!device_.is_cpu()) GTEST_SKIP() << "bf16 gradients are read on the CPU only";
  Tensor y = Tensor::empty(shape_), mean = Tensor::empty(Shape{c_}), var = Tensor::empty(Shape{c_});
  ops::batch_norm_forward_training(x_, gamma_, beta_, kEpsilon, relu_, y, mean, var);
  const Tensor dy32 = ref::bf16_rounded(dy_);
  Tensor dy16;
  ops::cast_to(DType::kBFloat16, dy32, dy16);
  const int64_t rows = shape_.numel() / c_;
  Tensor want_dx = Tensor::empty(shape_), dgamma = Tensor::empty(Shape{c_});
  Tensor dbeta = Tensor::empty(Shape{c_});
  ops::batch_norm_backward(x_, y, dy32, gamma_, mean, var, kEpsilon, relu_, want_dx, dgamma,
                           dbeta);
  std::vector<double> want_sums(static_cast<size_t>(2 * c_)), sums(want_sums.size());
  ops::batch_norm_backward_partial_sums(x_, y, dy32, mean, var, kEpsilon, relu_,
                                        want_sums.data());
  ops::batch_norm_backward_partial_sums(x_, y, dy16, mean, var, kEpsilon, relu_, sums.data());
  EXPECT_EQ(sums, want_sums) << "backward partial sums";
  Tensor want_dx16;
  ops::cast_to(DType::kBFloat16, want_dx, want_dx16);
  for (DType dx_type : {DType::kFloat32, DType::kBFloat16}) {
    const Tensor& want = dx_type == DType::kFloat32 ? want_dx : want_dx16;
    Tensor dx = Tensor::empty(shape_, Device::cpu(), dx_type);
    Tensor dg = Tensor::empty(Shape{c_}), db = Tensor::empty(Shape{c_});
    ops::batch_norm_backward(x_, y, dy16, gamma_, mean, var, kEpsilon, relu_, dx, dg, db);
    EXPECT_TRUE(same_bits(dx, want)) << "dx in " << dtype_name(dx_type);
    EXPECT_TRUE(same_bits(dg, dgamma)) << "dgamma";
    EXPECT_TRUE(same_bits(db, dbeta)) << "dbeta";
    Tensor apply = Tensor::empty(shape_), dx_apply = Tensor::empty(shape_, Device::cpu(), dx_type);
    ops::batch_norm_backward_apply(x_, y, dy32, gamma_, mean, var, kEpsilon, relu_,
                                   want_sums.data(), rows, apply);
    ops::batch_norm_backward_apply(x_, y, dy16, gamma_, mean, var, kEpsilon, relu_,
                                   want_sums.data(), rows, dx_apply);
    Tensor want_apply;  // not a copy of `apply`: a cast into shared storage overwrites it
    if (dx_type == DType::kBFloat16) {
      ops::cast_to(DType::kBFloat16, apply, want_apply);
    } else {
      want_apply = apply;
    }
    EXPECT_TRUE(same_bits(dx_apply, want_apply)) << "backward apply into " << dtype_name(dx_type);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, BatchNormTest, bn_ref::cases_on_every_device(),
                         bn_ref::case_device_name);

// Keras-style momentum (the running value keeps `momentum` of itself) and the unbiased
// batch variance: count 5 makes the count / (count - 1) factor 25%, far past tolerance.
class BatchNormUpdateRunningTest : public ::testing::TestWithParam<Device> {};

TEST_P(BatchNormUpdateRunningTest, KerasMomentumUnbiasedVariance) {
  const Device device = GetParam();
  SKIP_WITHOUT_KERNEL(ops::batch_norm_update_running, device);
  constexpr int64_t kChannels = 13, kCount = 5;
  constexpr float kMomentum = 0.9f;
  ref::Rng rng(11);
  Tensor batch_mean = ref::uniform_tensor(Shape{kChannels}, rng);
  Tensor batch_var = ref::uniform_tensor(Shape{kChannels}, rng, 0.1f, 2.f);
  Tensor running_mean = ref::uniform_tensor(Shape{kChannels}, rng);
  Tensor running_var = ref::uniform_tensor(Shape{kChannels}, rng, 0.1f, 2.f);
  Expected want_mean(kChannels), want_var(kChannels);
  for (int64_t c = 0; c < kChannels; ++c) {
    const double m = kMomentum;
    want_mean.add(c, m * running_mean.f32()[c]);
    want_mean.add(c, (1 - m) * batch_mean.f32()[c]);
    want_var.add(c, m * running_var.f32()[c]);
    want_var.add(c, (1 - m) * batch_var.f32()[c] * kCount / (kCount - 1.0));
  }
  Tensor running_mean_on = on(device, running_mean), running_var_on = on(device, running_var);
  ops::batch_norm_update_running(on(device, batch_mean), on(device, batch_var), kCount,
                                 kMomentum, running_mean_on, running_var_on);
  EXPECT_TRUE(ref::matches(running_mean_on, want_mean)) << "running mean";
  EXPECT_TRUE(ref::matches(running_var_on, want_var)) << "running variance";
}

INSTANTIATE_ON_OP_TEST_DEVICES(BatchNormUpdateRunningTest);

}  // namespace
}  // namespace residual
