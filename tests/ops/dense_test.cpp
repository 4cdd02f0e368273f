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
  // x, w or dy as the op gets it: a copy on the device, or its bf16 cast (use_bf16()).
  Tensor operand(const Tensor& host) const {
    if (!bf16_) return on(device_, host);
    Tensor cast;
    ops::cast_to(DType::kBFloat16, host, cast);
    return cast;
  }
  // Mixed precision from here on: the operands rounded to bf16 on the host, so the
  // double reference multiplies exactly what the kernel does (see conv2d_test.cpp).
  void use_bf16() {
    for (Tensor* t : {&x_, &w_, &dy_}) *t = ref::bf16_rounded(*t);
    bf16_ = true;
  }

  void check_forward(bool with_bias) {
    SKIP_WITHOUT_KERNEL(ops::dense_forward, device_);
    Tensor y = nan_output(Shape{n_, out_});
    const Tensor bias = on(device_, bias_);
    ops::dense_forward(operand(x_), operand(w_), with_bias ? &bias : nullptr, y);
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
    ops::dense_backward_weights(operand(x_), operand(dy_), dw,
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

  void check_backward_data() {
    SKIP_WITHOUT_KERNEL(ops::dense_backward_data, device_);
    Tensor dx = nan_output(Shape{n_, in_});
    ops::dense_backward_data(operand(dy_), operand(w_), dx);
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

  int64_t n_ = 0, in_ = 0, out_ = 0;
  bool bf16_ = false;
  Device device_;
  Tensor x_, w_, bias_, dy_;
};

TEST_P(DenseTest, ForwardWithBias) { check_forward(true); }

TEST_P(DenseTest, ForwardWithoutBias) { check_forward(false); }

TEST_P(DenseTest, BackwardData) { check_backward_data(); }

TEST_P(DenseTest, BackwardWeightsAndBias) { check_backward_weights(true); }

TEST_P(DenseTest, BackwardWeightsWithoutBias) { check_backward_weights(false); }

// bf16 x, w and dy accumulating into fp32 results, on CPUs with native bf16.
TEST_P(DenseTest, Bf16OperandsAccumulateInFp32) {
  if (!device_.is_cpu()) GTEST_SKIP() << "bf16 dense layers run on the CPU only";
  const ops::CpuBf16Support bf16 = ops::cpu_bf16_support();
  if (!bf16.native) GTEST_SKIP() << "no native bf16 on this CPU (oneDNN's ISA: " << bf16.isa << ")";
  use_bf16();
  check_forward(true);
  check_backward_data();
  check_backward_weights(true);
}

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
