// Dense (oneDNN inner product) forward / backward against double loops. The kernel is
// out x in, so a transposed weight layout fails every non-square case below. Every shape
// runs on every device.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;
using ref::Expected;

// (batch, in, out)
using DenseParam = std::tuple<int64_t, int64_t, int64_t>;

// Param: ((batch, in, out), device). x_, w_, bias_ and dy_ live on the host for the
// references; the ops get copies on device_ and write outputs made there.
class DenseTest : public ::testing::TestWithParam<WithDevice<DenseParam>> {
 protected:
  void SetUp() override {
    std::tie(n_, in_, out_) = std::get<0>(GetParam());
    device_ = std::get<1>(GetParam());
    ref::Rng rng(2024);
    x_ = ref::uniform_tensor(Shape{n_, in_}, rng);
    w_ = ref::uniform_tensor(Shape{out_, in_}, rng);
    bias_ = ref::uniform_tensor(Shape{out_}, rng);
    dy_ = ref::uniform_tensor(Shape{n_, out_}, rng);
  }

  Tensor nan_output(const Shape& shape) const { return on(device_, ref::nan_tensor(shape)); }

  void check_forward(bool with_bias) {
    SKIP_WITHOUT_KERNEL(ops::dense_forward, device_);
    Tensor y = nan_output(Shape{n_, out_});
    const Tensor bias = on(device_, bias_);
    ops::dense_forward(on(device_, x_), on(device_, w_), with_bias ? &bias : nullptr, y);
    Expected want(n_ * out_);
    for (int64_t b = 0; b < n_; ++b) {
      for (int64_t o = 0; o < out_; ++o) {
        if (with_bias) want.add(b * out_ + o, bias_.f32()[o]);
        for (int64_t i = 0; i < in_; ++i) {
          want.add(b * out_ + o, static_cast<double>(x_.f32()[b * in_ + i]) *
                                     w_.f32()[o * in_ + i]);
        }
      }
    }
    EXPECT_TRUE(ref::matches(y, want));
  }

  void check_backward_weights(bool with_bias) {
    SKIP_WITHOUT_KERNEL(ops::dense_backward_weights, device_);
    Tensor dw = nan_output(Shape{out_, in_}), dbias = nan_output(Shape{out_});
    ops::dense_backward_weights(on(device_, x_), on(device_, dy_), dw,
                                with_bias ? &dbias : nullptr);
    Expected want_dw(out_ * in_), want_dbias(out_);
    for (int64_t b = 0; b < n_; ++b) {
      for (int64_t o = 0; o < out_; ++o) {
        const double g = dy_.f32()[b * out_ + o];
        want_dbias.add(o, g);
        for (int64_t i = 0; i < in_; ++i) want_dw.add(o * in_ + i, g * x_.f32()[b * in_ + i]);
      }
    }
    EXPECT_TRUE(ref::matches(dw, want_dw)) << "dw";
    if (with_bias) {
      EXPECT_TRUE(ref::matches(dbias, want_dbias)) << "dbias";
    }
  }

  int64_t n_ = 0, in_ = 0, out_ = 0;
  Device device_;
  Tensor x_, w_, bias_, dy_;
};

TEST_P(DenseTest, ForwardWithBias) { check_forward(true); }

TEST_P(DenseTest, ForwardWithoutBias) { check_forward(false); }

TEST_P(DenseTest, BackwardData) {
  SKIP_WITHOUT_KERNEL(ops::dense_backward_data, device_);
  Tensor dx = nan_output(Shape{n_, in_});
  ops::dense_backward_data(on(device_, dy_), on(device_, w_), dx);
  Expected want(n_ * in_);
  for (int64_t b = 0; b < n_; ++b) {
    for (int64_t i = 0; i < in_; ++i) {
      for (int64_t o = 0; o < out_; ++o) {
        want.add(b * in_ + i, static_cast<double>(dy_.f32()[b * out_ + o]) *
                                  w_.f32()[o * in_ + i]);
      }
    }
  }
  EXPECT_TRUE(ref::matches(dx, want));
}

TEST_P(DenseTest, BackwardWeightsAndBias) { check_backward_weights(true); }

TEST_P(DenseTest, BackwardWeightsWithoutBias) { check_backward_weights(false); }

std::string dense_shape_name(const ::testing::TestParamInfo<DenseParam>& info) {
  return "N" + std::to_string(std::get<0>(info.param)) + "In" +
         std::to_string(std::get<1>(info.param)) + "Out" + std::to_string(std::get<2>(info.param));
}

std::string dense_shape_device_name(const ::testing::TestParamInfo<WithDevice<DenseParam>>& info) {
  return op_test::with_device_name(info, dense_shape_name);
}

INSTANTIATE_TEST_SUITE_P(Shapes, DenseTest,
                         op_test::with_every_device(::testing::Values(
                             DenseParam{5, 37, 19}, DenseParam{1, 7, 3}, DenseParam{16, 64, 10},
                             DenseParam{3, 1, 5}, DenseParam{9, 100, 1})),
                         dense_shape_device_name);

}  // namespace
}  // namespace residual
