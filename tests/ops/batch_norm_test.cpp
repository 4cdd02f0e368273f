// Batch normalisation (per last-dimension channel, optional fused ReLU) against a double
// reference. The backward is checked against central finite differences of the double
// forward, so the test does not share the closed-form gradient the kernel implements.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using ref::Expected;

constexpr float kEpsilon = 1e-3f;  // Keras' default; large enough to matter in the check

// One channel's loss sum_r w[r] * BN(x)[r] (training statistics) as a function of a
// change `delta` to x[row], in double: its derivative in x[row] is dx[row] when w is dy
// through the (fixed) ReLU mask. Sums over the centred column make each evaluation O(1),
// so central differences stay cheap on large tensors.
class ChannelLoss {
 public:
  // centred: x - mean(x) per row; weight: w per row.
  ChannelLoss(std::vector<double> centred, const std::vector<double>& weight, double gamma,
              double beta)
      : centred_(std::move(centred)), weight_(weight), gamma_(gamma), beta_(beta) {
    for (size_t r = 0; r < centred_.size(); ++r) {
      sum_d_ += centred_[r];
      sum_dd_ += centred_[r] * centred_[r];
      sum_w_ += weight_[r];
      sum_wd_ += weight_[r] * centred_[r];
    }
  }

  double operator()(size_t row, double delta) const {
    const double n = static_cast<double>(centred_.size());
    const double mean = (sum_d_ + delta) / n;
    const double var = (sum_dd_ + 2 * centred_[row] * delta + delta * delta) / n - mean * mean;
    const double sum_wd = sum_wd_ + weight_[row] * delta;
    // sum_r w[r] * (gamma * (d[r] - mean) / sqrt(var + eps) + beta)
    return gamma_ * (sum_wd - mean * sum_w_) / std::sqrt(var + kEpsilon) + beta_ * sum_w_;
  }

  // Central difference; truncation ~ step^2, rounding ~ 1e-16 / step.
  double derivative(size_t row) const {
    constexpr double kStep = 1e-4;
    return ((*this)(row, kStep) - (*this)(row, -kStep)) / (2 * kStep);
  }

 private:
  std::vector<double> centred_, weight_;
  double gamma_, beta_;
  double sum_d_ = 0, sum_dd_ = 0, sum_w_ = 0, sum_wd_ = 0;
};

struct BatchNormCase {
  std::vector<int64_t> dims;
  bool relu;
  float center = 2.f, spread = 1.f;  // x ~ center + U(-spread, spread)
};

void PrintTo(const BatchNormCase& c, std::ostream* out) {
  *out << Shape(c.dims).str() << (c.relu ? " relu" : "") << ", x ~ " << c.center << " +- "
       << c.spread;
}

class BatchNormTest : public ::testing::TestWithParam<BatchNormCase> {
 protected:
  void SetUp() override {
    const BatchNormCase& bc = GetParam();
    shape_ = Shape(bc.dims);
    relu_ = bc.relu;
    c_ = shape_[shape_.rank() - 1];
    rows_ = shape_.numel() / c_;
    count_ = static_cast<double>(rows_);
    ref::Rng rng(77);
    // Centred away from zero: statistics taken as E[x^2] - mean^2 would cancel (and do
    // catastrophically in the LargeMean cases).
    x_ = ref::uniform_tensor(shape_, rng, bc.center - bc.spread, bc.center + bc.spread);
    gamma_ = ref::uniform_tensor(Shape{c_}, rng, -1.5f, 1.5f);
    beta_ = ref::uniform_tensor(Shape{c_}, rng, -0.5f, 0.5f);
    dy_ = ref::uniform_tensor(shape_, rng);
    mean_.assign(static_cast<size_t>(c_), 0.0);
    var_.assign(static_cast<size_t>(c_), 0.0);
    for (int64_t r = 0; r < rows_; ++r) {
      for (int64_t c = 0; c < c_; ++c) mean_[c] += x_.f32()[r * c_ + c] / count_;
    }
    for (int64_t r = 0; r < rows_; ++r) {
      for (int64_t c = 0; c < c_; ++c) {
        const double d = x_.f32()[r * c_ + c] - mean_[c];
        var_[c] += d * d / count_;
      }
    }
  }

  double inv_std(int64_t c) const { return 1.0 / std::sqrt(var_[c] + kEpsilon); }

  Shape shape_;
  bool relu_ = false;
  int64_t c_ = 0, rows_ = 0;
  double count_ = 0;  // rows_ as a divisor
  Tensor x_, gamma_, beta_, dy_;
  std::vector<double> mean_, var_;
};

TEST_P(BatchNormTest, TrainingForward) {
  Tensor y = ref::nan_tensor(shape_), mean = ref::nan_tensor(Shape{c_}),
         var = ref::nan_tensor(Shape{c_});
  ops::batch_norm_forward_training(x_, gamma_, beta_, kEpsilon, relu_, y, mean, var);

  Expected want_mean(c_), want_var(c_);
  Expected want_y(shape_.numel());
  for (int64_t c = 0; c < c_; ++c) {
    want_mean.value[c] = mean_[c];
    // Biased (divides by the count), as Keras / PyTorch normalise in training. Its scale
    // is itself, the sum of the (x - mean)^2 terms: a variance computed as E[x^2] - mean^2
    // in float32 loses everything when |mean| >> spread, and must fail.
    want_var.value[c] = var_[c];
    want_var.scale[c] = var_[c];
  }
  for (int64_t r = 0; r < rows_; ++r) {
    for (int64_t c = 0; c < c_; ++c) {
      const int64_t i = r * c_ + c;
      const double x = x_.f32()[i], s = gamma_.f32()[c] * inv_std(c);
      want_mean.scale[c] += std::abs(x) / count_;
      const double v = (x - mean_[c]) * s + beta_.f32()[c];
      want_y.value[i] = relu_ ? std::max(v, 0.0) : v;
      want_y.scale[i] = (std::abs(x) + std::abs(mean_[c])) * std::abs(s) + std::abs(beta_.f32()[c]);
    }
  }
  EXPECT_TRUE(ref::matches(y, want_y)) << "y";
  EXPECT_TRUE(ref::matches(mean, want_mean)) << "batch mean";
  EXPECT_TRUE(ref::matches(var, want_var)) << "batch variance";
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

  // g = dy through the ReLU (the mask comes from the y the backward is given).
  std::vector<double> g(static_cast<size_t>(shape_.numel()));
  for (int64_t i = 0; i < shape_.numel(); ++i) {
    g[i] = (!relu_ || y.f32()[i] > 0.f) ? dy_.f32()[i] : 0.0;
  }
  Expected want_dx(shape_.numel()), want_dgamma(c_), want_dbeta(c_);
  std::vector<double> mean_abs_g(c_, 0.0), mean_abs_g_xhat(c_, 0.0);
  for (int64_t i = 0; i < shape_.numel(); ++i) {
    const int64_t c = i % c_;
    const double xhat = (x_.f32()[i] - mean_[c]) * inv_std(c);
    // dgamma = sum dy' * xhat over the statistics the backward is given: float32 rounds
    // the mean by up to ulp(mean) / 2, which shifts every xhat alike and so dgamma by
    // that * sum(dy') / std, far above float accumulation error when |mean| >> std.
    const double given_xhat = (x_.f32()[i] - static_cast<double>(mean.f32()[c])) /
                              std::sqrt(static_cast<double>(var.f32()[c]) + kEpsilon);
    want_dgamma.add(c, g[i] * given_xhat);
    want_dbeta.add(c, g[i]);
    mean_abs_g[c] += std::abs(g[i]) / count_;
    mean_abs_g_xhat[c] += std::abs(g[i] * xhat) / count_;
  }
  for (int64_t c = 0; c < c_; ++c) {
    std::vector<double> centred(static_cast<size_t>(rows_)), weight(centred.size());
    for (int64_t r = 0; r < rows_; ++r) {
      centred[r] = x_.f32()[r * c_ + c] - mean_[c];
      weight[r] = g[r * c_ + c];
    }
    const ChannelLoss loss(std::move(centred), weight, gamma_.f32()[c], beta_.f32()[c]);
    for (int64_t r = 0; r < rows_; ++r) {
      const int64_t i = r * c_ + c;
      want_dx.value[i] = loss.derivative(static_cast<size_t>(r));
      // Magnitudes of the closed form's terms: dy', mean(dy') and x * mean(dy' * xhat).
      const double x_term = (std::abs(x_.f32()[i]) + std::abs(mean_[c])) * inv_std(c);
      want_dx.scale[i] = std::abs(gamma_.f32()[c]) * inv_std(c) *
                         (std::abs(g[i]) + mean_abs_g[c] + x_term * mean_abs_g_xhat[c]);
    }
  }
  EXPECT_TRUE(ref::matches(dx, want_dx)) << "dx";
  EXPECT_TRUE(ref::matches(dgamma, want_dgamma)) << "dgamma";
  EXPECT_TRUE(ref::matches(dbeta, want_dbeta)) << "dbeta";
}

std::string case_name(const ::testing::TestParamInfo<BatchNormCase>& info) {
  const BatchNormCase& c = info.param;
  std::string name;
  for (int64_t d : c.dims) name += (name.empty() ? "" : "x") + std::to_string(d);
  return "Shape" + name + (c.relu ? "Relu" : "") + (std::abs(c.center) > 10 ? "LargeMean" : "");
}

std::vector<BatchNormCase> cases() {
  std::vector<BatchNormCase> all;
  // The last shape passes the kernels' single-thread cutoff (2^15 elements), so
  // per-thread partial sums combine.
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{
           {4, 3, 5, 7}, {16, 33}, {3, 4, 4, 20}, {8, 12, 12, 37}}) {
    all.push_back({dims, false});
    all.push_back({dims, true});
  }
  // |mean| / spread = 1000: the statistics must not come from E[x^2] - mean^2.
  all.push_back({{8, 12, 12, 37}, false, 100.f, 0.1f});
  all.push_back({{16, 33}, true, -100.f, 0.1f});
  return all;
}

INSTANTIATE_TEST_SUITE_P(Cases, BatchNormTest, ::testing::ValuesIn(cases()), case_name);

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
