// Batch normalisation (per last-dimension channel, optional fused ReLU): the fused
// single-process kernels against the double reference of tests/ops/batch_norm_reference.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/batch_norm_reference.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using bn_ref::kEpsilon;
using ref::Expected;

class BatchNormTest : public bn_ref::BatchNormFixture {};

TEST_P(BatchNormTest, TrainingForward) {
  Tensor y = ref::nan_tensor(shape_), mean = ref::nan_tensor(Shape{c_}),
         var = ref::nan_tensor(Shape{c_});
  ops::batch_norm_forward_training(x_, gamma_, beta_, kEpsilon, relu_, y, mean, var);

  EXPECT_TRUE(ref::matches(y, want_y())) << "y";
  EXPECT_TRUE(ref::matches(mean, want_mean())) << "batch mean";
  EXPECT_TRUE(ref::matches(var, want_var())) << "batch variance";
}

TEST_P(BatchNormTest, InferenceForward) {
  ref::Rng rng(5);
  Tensor running_mean = ref::uniform_tensor(Shape{c_}, rng, 1.5f, 2.5f);
  Tensor running_var = ref::uniform_tensor(Shape{c_}, rng, 0.2f, 2.f);
  Tensor y = ref::nan_tensor(shape_);
  ops::batch_norm_forward_inference(x_, gamma_, beta_, running_mean, running_var, kEpsilon,
                                    relu_, y);
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
  Tensor y = ref::nan_tensor(shape_), mean = ref::nan_tensor(Shape{c_}),
         var = ref::nan_tensor(Shape{c_});
  ops::batch_norm_forward_training(x_, gamma_, beta_, kEpsilon, relu_, y, mean, var);
  Tensor dx = ref::nan_tensor(shape_), dgamma = ref::nan_tensor(Shape{c_}),
         dbeta = ref::nan_tensor(Shape{c_});
  ops::batch_norm_backward(x_, y, dy_, gamma_, mean, var, kEpsilon, relu_, dx, dgamma, dbeta);

  const std::vector<double> g = masked_dy(y);
  const auto [want_dgamma, want_dbeta] = want_dgamma_dbeta(g, mean, var);
  EXPECT_TRUE(ref::matches(dx, want_dx(g))) << "dx";
  EXPECT_TRUE(ref::matches(dgamma, want_dgamma)) << "dgamma";
  EXPECT_TRUE(ref::matches(dbeta, want_dbeta)) << "dbeta";
}

INSTANTIATE_TEST_SUITE_P(Cases, BatchNormTest, ::testing::ValuesIn(bn_ref::cases()),
                         bn_ref::case_name);

// Keras-style momentum (the running value keeps `momentum` of itself) and the unbiased
// batch variance: count 5 makes the count / (count - 1) factor 25%, far past tolerance.
TEST(BatchNormUpdateRunning, KerasMomentumUnbiasedVariance) {
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
  ops::batch_norm_update_running(batch_mean, batch_var, kCount, kMomentum, running_mean,
                                 running_var);
  EXPECT_TRUE(ref::matches(running_mean, want_mean)) << "running mean";
  EXPECT_TRUE(ref::matches(running_var, want_var)) << "running variance";
}

}  // namespace
}  // namespace residual
