// Activations forward and backward against double references, on every device. The
// backward takes the forward output y (not x), so each backward test feeds it the op's
// own forward result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using ops::Activation;
using op_test::on;
using op_test::WithDevice;
using ref::Expected;

using Dims = std::vector<int64_t>;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Softmax over the last dimension in double.
std::vector<double> softmax_rows(const Tensor& x) {
  const int64_t k = x.shape()[x.rank() - 1], rows = x.numel() / k;
  std::vector<double> y(static_cast<size_t>(x.numel()));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.f32() + r * k;
    const double top = *std::max_element(xr, xr + k);
    double total = 0;
    for (int64_t i = 0; i < k; ++i) total += std::exp(xr[i] - top);
    for (int64_t i = 0; i < k; ++i) y[r * k + i] = std::exp(xr[i] - top) / total;
  }
  return y;
}

// Parameterised by shape: a small one, and one past the kernels' single-thread cutoff
// (2^15 elements) so the OpenMP loops really split; and by device.
class ActivationTest : public ::testing::TestWithParam<WithDevice<Dims>> {
 protected:
  void SetUp() override {
    device_ = std::get<1>(GetParam());
    SKIP_WITHOUT_KERNEL(ops::activation_forward, device_);
    SKIP_WITHOUT_KERNEL(ops::activation_backward, device_);
    ref::Rng rng(31);
    x_ = ref::uniform_tensor(Shape(std::get<0>(GetParam())), rng, -4.f, 4.f);
    dy_ = ref::uniform_tensor(x_.shape(), rng);
  }

  // Runs forward then backward of `kind` on x_ / dy_ (moved to the device); y and dx
  // are left on the device.
  void run(Activation kind, Tensor& y, Tensor& dx) {
    y = on(device_, ref::nan_tensor(x_.shape()));
    dx = on(device_, ref::nan_tensor(x_.shape()));
    ops::activation_forward(kind, on(device_, x_), y);
    ops::activation_backward(kind, y, on(device_, dy_), dx);
  }

  Device device_;
  Tensor x_, dy_;  // on the host
};

TEST_P(ActivationTest, LinearCopiesBothWays) {
  Tensor y, dx;
  run(Activation::kLinear, y, dx);
  EXPECT_TRUE(ref::matches(y, Expected(ref::to_double(x_)), ref::kExact));
  EXPECT_TRUE(ref::matches(dx, Expected(ref::to_double(dy_)), ref::kExact));
}

// On the CPU a ReLU's y may be a bf16 activation (an Add's fused ReLU under mixed
// precision): the mask must pass the gradient exactly where y > 0 in float, for every
// kind of value: signed zeros, subnormals, infinities and NaNs too.
TEST(ReluBackwardBf16Test, TheMaskIsYAbove0ForEveryBitPattern) {
  const int64_t n = int64_t{1} << 16;  // every bf16 bit pattern once
  Tensor y16 = Tensor::empty(Shape{n}, Device::cpu(), DType::kBFloat16);
  Tensor dy = Tensor::empty(Shape{n}), dx = Tensor::empty(Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    y16.data<uint16_t>()[i] = static_cast<uint16_t>(i);
    dy.f32()[i] = static_cast<float>(i % 97) + 1.f;
  }
  Tensor y32;
  ops::cast_to(DType::kFloat32, y16, y32);
  ops::activation_backward(Activation::kRelu, y16, dy, dx);
  for (int64_t i = 0; i < n; ++i) {
    const float want = y32.f32()[i] > 0.f ? dy.f32()[i] : 0.f;
    ASSERT_EQ(dx.f32()[i], want) << "bf16 bits 0x" << std::hex << i;
  }
  // The gradients in bf16 too (dy's values are small integers, exact in bf16): the all-bf16
  // kernel masks the bits, the mixed one widens; both give these values.
  Tensor dy16, dx16 = Tensor::empty(Shape{n}, Device::cpu(), DType::kBFloat16), dx16_read;
  ops::cast_to(DType::kBFloat16, dy, dy16);
  for (const Tensor* y : {&y16, &y32}) {
    ops::activation_backward(Activation::kRelu, *y, dy16, dx16);
    ops::cast_to(DType::kFloat32, dx16, dx16_read);
    for (int64_t i = 0; i < n; ++i) {
      const float want = y32.f32()[i] > 0.f ? dy.f32()[i] : 0.f;
      ASSERT_EQ(dx16_read.f32()[i], want)
          << (y == &y16 ? "bf16" : "float32") << " y, bf16 bits 0x" << std::hex << i;
    }
  }
}

TEST_P(ActivationTest, Relu) {
  Tensor y, dx;
  run(Activation::kRelu, y, dx);
  std::vector<double> want_y(x_.numel()), want_dx(x_.numel());
  for (int64_t i = 0; i < x_.numel(); ++i) {
    const float x = x_.f32()[i];
    ASSERT_NE(x, 0.f) << "the derivative at 0 is a convention; the data must avoid it";
    want_y[i] = x > 0 ? x : 0.0;
    want_dx[i] = x > 0 ? dy_.f32()[i] : 0.0;
  }
  EXPECT_TRUE(ref::matches(y, Expected(want_y), ref::kExact));
  EXPECT_TRUE(ref::matches(dx, Expected(want_dx), ref::kExact));
}

TEST_P(ActivationTest, Sigmoid) {
  Tensor y, dx;
  run(Activation::kSigmoid, y, dx);
  Expected want_y(x_.numel()), want_dx(x_.numel());
  for (int64_t i = 0; i < x_.numel(); ++i) {
    const double s = sigmoid(x_.f32()[i]), g = dy_.f32()[i];
    want_y.add(i, s);
    // dy * (s - s^2): near saturation 1 - s cancels, so the scale counts both terms.
    want_dx.add(i, g * s);
    want_dx.add(i, -g * s * s);
  }
  EXPECT_TRUE(ref::matches(y, want_y));
  EXPECT_TRUE(ref::matches(dx, want_dx));
}

std::string activation_shape_name(const ::testing::TestParamInfo<Dims>& info) {
  std::string name;
  for (int64_t d : info.param) name += (name.empty() ? "" : "x") + std::to_string(d);
  return "Shape" + name;
}

std::string activation_shape_device_name(const ::testing::TestParamInfo<WithDevice<Dims>>& info) {
  return op_test::with_device_name(info, activation_shape_name);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ActivationTest,
                         op_test::with_every_device(::testing::Values(Dims{3, 5, 4, 7},
                                                                      Dims{4, 32, 32, 9})),
                         activation_shape_device_name);

// x and dy on the host; the op runs on `device`.
void check_softmax(Device device, const Tensor& x, const Tensor& dy) {
  SKIP_WITHOUT_KERNEL(ops::activation_forward, device);
  SKIP_WITHOUT_KERNEL(ops::activation_backward, device);
  Tensor y = on(device, ref::nan_tensor(x.shape()));
  Tensor dx = on(device, ref::nan_tensor(x.shape()));
  ops::activation_forward(Activation::kSoftmax, on(device, x), y);
  ops::activation_backward(Activation::kSoftmax, y, on(device, dy), dx);
  const std::vector<double> p = softmax_rows(x);
  const int64_t k = x.shape()[x.rank() - 1];
  // dx_i = sum_j dy_j * dp_j / dx_i with the Jacobian dp_j / dx_i = p_j (delta_ij - p_i).
  Expected want_dx(x.numel());
  for (int64_t r = 0; r < x.numel() / k; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const double pj = p[r * k + j], pi = p[r * k + i];
        want_dx.add(r * k + i, dy.f32()[r * k + j] * pj * ((i == j ? 1.0 : 0.0) - pi));
      }
    }
  }
  EXPECT_TRUE(ref::matches(y, Expected(p))) << "softmax";
  EXPECT_TRUE(ref::matches(dx, want_dx)) << "softmax backward";
  const Tensor host_y = ref::host_copy(y);
  for (int64_t r = 0; r < x.numel() / k; ++r) {
    double total = 0;
    for (int64_t i = 0; i < k; ++i) total += host_y.f32()[r * k + i];
    EXPECT_NEAR(total, 1.0, 1e-5) << "row " << r;
  }
}

class SoftmaxTest : public ::testing::TestWithParam<Device> {};

TEST_P(SoftmaxTest, RowsOfLogits) {
  ref::Rng rng(8);
  Tensor x = ref::uniform_tensor(Shape{6, 10}, rng, -5.f, 5.f);
  // Logits of 200 overflow exp in float32: only a max-subtracted softmax stays finite.
  for (int64_t i = 30; i < 40; ++i) x.f32()[i] += 200.f;
  // A row of -200: the unshifted exp underflows to 0 / 0.
  for (int64_t i = 40; i < 50; ++i) x.f32()[i] -= 200.f;
  check_softmax(GetParam(), x, ref::uniform_tensor(x.shape(), rng));
}

TEST_P(SoftmaxTest, ManyRows) {
  ref::Rng rng(10);
  Tensor x = ref::uniform_tensor(Shape{4096, 10}, rng, -5.f, 5.f);
  check_softmax(GetParam(), x, ref::uniform_tensor(x.shape(), rng));
}

// Softmax over the channels of an image tensor: the last dimension, whatever the rank.
TEST_P(SoftmaxTest, LastDimensionOfImage) {
  ref::Rng rng(9);
  Tensor x = ref::uniform_tensor(Shape{2, 3, 2, 9}, rng, -3.f, 3.f);
  check_softmax(GetParam(), x, ref::uniform_tensor(x.shape(), rng));
}

INSTANTIATE_ON_OP_TEST_DEVICES(SoftmaxTest);

}  // namespace
}  // namespace residual
