#pragma once
// The double-precision reference shared by the batch-norm op tests (the fused kernels in
// batch_norm_test.cpp, the split pieces of synchronised BN in batch_norm_split_test.cpp):
// random inputs per case, the exact batch statistics, and the expected y, dgamma, dbeta
// and dx. dx comes from central finite differences of the double forward, so no test
// shares the closed-form gradient the kernels implement.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual::bn_ref {

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

inline void PrintTo(const BatchNormCase& c, std::ostream* out) {
  *out << Shape(c.dims).str() << (c.relu ? " relu" : "") << ", x ~ " << c.center << " +- "
       << c.spread;
}

inline std::string case_name(const ::testing::TestParamInfo<BatchNormCase>& info) {
  const BatchNormCase& c = info.param;
  std::string name;
  for (int64_t d : c.dims) name += (name.empty() ? "" : "x") + std::to_string(d);
  return "Shape" + name + (c.relu ? "Relu" : "") + (std::abs(c.center) > 10 ? "LargeMean" : "");
}

inline std::vector<BatchNormCase> cases() {
  std::vector<BatchNormCase> all;
  // The 8x12x12x37 shape passes the kernels' single-thread cutoff (2^15 elements), so
  // per-thread partial sums combine. 1x5 is a batch of one row per channel (variance 0).
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{
           {4, 3, 5, 7}, {16, 33}, {3, 4, 4, 20}, {8, 12, 12, 37}, {1, 5}}) {
    all.push_back({dims, false});
    all.push_back({dims, true});
  }
  // |mean| / spread = 1000: the statistics must not come from E[x^2] - mean^2 in float.
  all.push_back({{8, 12, 12, 37}, false, 100.f, 0.1f});
  all.push_back({{16, 33}, true, -100.f, 0.1f});
  return all;
}

// Inputs (on the host) and exact statistics of one case; the references read results
// of any device (copied to the host).
class BatchNormData {
 protected:
  void init(const BatchNormCase& bc) {
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

  // The exact batch mean and (biased) variance. The mean's scale is mean(|x|); the
  // variance's is itself, the sum of the (x - mean)^2 terms: a variance computed as
  // E[x^2] - mean^2 in float32 loses everything when |mean| >> spread, and must fail.
  Expected want_mean() const {
    Expected want(c_);
    for (int64_t c = 0; c < c_; ++c) want.value[c] = mean_[c];
    for (int64_t i = 0; i < shape_.numel(); ++i) want.scale[i % c_] += std::abs(x_.f32()[i]) / count_;
    return want;
  }
  Expected want_var() const { return Expected(var_); }

  // y normalised with the exact statistics (biased variance, as Keras / PyTorch train).
  Expected want_y() const {
    Expected want(shape_.numel());
    for (int64_t i = 0; i < shape_.numel(); ++i) {
      const int64_t c = i % c_;
      const double x = x_.f32()[i], s = gamma_.f32()[c] * inv_std(c);
      const double v = (x - mean_[c]) * s + beta_.f32()[c];
      want.value[i] = relu_ ? std::max(v, 0.0) : v;
      want.scale[i] = (std::abs(x) + std::abs(mean_[c])) * std::abs(s) + std::abs(beta_.f32()[c]);
    }
    return want;
  }

  // dy through the ReLU (the mask comes from the y the backward is given).
  std::vector<double> masked_dy(const Tensor& y_any) const {
    const Tensor y = ref::host_copy(y_any);
    std::vector<double> g(static_cast<size_t>(shape_.numel()));
    for (int64_t i = 0; i < shape_.numel(); ++i) {
      g[i] = (!relu_ || y.f32()[i] > 0.f) ? dy_.f32()[i] : 0.0;
    }
    return g;
  }

  // dgamma = sum dy' * xhat and dbeta = sum dy' over the statistics the backward is given:
  // float32 rounds the mean by up to ulp(mean) / 2, which shifts every xhat alike and so
  // dgamma by that * sum(dy') / std, far above float accumulation error when |mean| >> std.
  std::pair<Expected, Expected> want_dgamma_dbeta(const std::vector<double>& g,
                                                  const Tensor& mean_any,
                                                  const Tensor& var_any) const {
    const Tensor mean = ref::host_copy(mean_any), var = ref::host_copy(var_any);
    Expected dgamma(c_), dbeta(c_);
    for (int64_t i = 0; i < shape_.numel(); ++i) {
      const int64_t c = i % c_;
      const double given_xhat = (x_.f32()[i] - static_cast<double>(mean.f32()[c])) /
                                std::sqrt(static_cast<double>(var.f32()[c]) + kEpsilon);
      dgamma.add(c, g[i] * given_xhat);
      dbeta.add(c, g[i]);
    }
    return {dgamma, dbeta};
  }

  // dx by central differences of the double forward, with the closed form's term
  // magnitudes (dy', mean(dy') and x * mean(dy' * xhat)) as the scale.
  Expected want_dx(const std::vector<double>& g) const {
    Expected want(shape_.numel());
    std::vector<double> mean_abs_g(c_, 0.0), mean_abs_g_xhat(c_, 0.0);
    for (int64_t i = 0; i < shape_.numel(); ++i) {
      const int64_t c = i % c_;
      const double xhat = (x_.f32()[i] - mean_[c]) * inv_std(c);
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
        want.value[i] = loss.derivative(static_cast<size_t>(r));
        const double x_term = (std::abs(x_.f32()[i]) + std::abs(mean_[c])) * inv_std(c);
        want.scale[i] = std::abs(gamma_.f32()[c]) * inv_std(c) *
                        (std::abs(g[i]) + mean_abs_g[c] + x_term * mean_abs_g_xhat[c]);
      }
    }
    return want;
  }

  Shape shape_;
  bool relu_ = false;
  int64_t c_ = 0, rows_ = 0;
  double count_ = 0;  // rows_ as a divisor
  Tensor x_, gamma_, beta_, dy_;
  std::vector<double> mean_, var_;
};

// One case on one device: the host data above (read by the references) plus copies of
// the inputs on device_ for the ops; outputs are made there with nan_output.
class BatchNormDeviceFixture
    : public ::testing::TestWithParam<op_test::WithDevice<BatchNormCase>>,
      public BatchNormData {
 protected:
  void SetUp() override {
    device_ = std::get<1>(GetParam());
    init(std::get<0>(GetParam()));
    x_on_ = op_test::on(device_, x_);
    gamma_on_ = op_test::on(device_, gamma_);
    beta_on_ = op_test::on(device_, beta_);
    dy_on_ = op_test::on(device_, dy_);
  }

  Tensor nan_output(const Shape& shape) const {
    return op_test::on(device_, ref::nan_tensor(shape));
  }

  Device device_;
  Tensor x_on_, gamma_on_, beta_on_, dy_on_;
};

inline std::string case_device_name(
    const ::testing::TestParamInfo<op_test::WithDevice<BatchNormCase>>& info) {
  return op_test::with_device_name(info, case_name);
}

// Every case on every device, for INSTANTIATE_TEST_SUITE_P.
inline auto cases_on_every_device() {
  return op_test::with_every_device(::testing::ValuesIn(cases()));
}

}  // namespace residual::bn_ref
