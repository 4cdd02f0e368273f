// add, channel_scale and global_avg_pool against double references, on every device.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;
using ref::Expected;

// Small shapes run on one thread; large ones (past the kernels' 2^15-element cutoff)
// exercise the OpenMP split.
using Dims = std::vector<int64_t>;  // gtest prints a vector parameter readably
const Dims kSmall{2, 3, 4, 5};
const Dims kLarge{4, 16, 16, 40};

void check_add(Device device, int inputs, const Dims& dims, bool relu = false) {
  const Shape shape(dims);
  ref::Rng rng(100 + inputs);
  std::vector<Tensor> xs, on_device;
  std::vector<const Tensor*> ptrs;
  for (int k = 0; k < inputs; ++k) xs.push_back(ref::uniform_tensor(shape, rng));
  for (const Tensor& x : xs) on_device.push_back(on(device, x));
  for (const Tensor& x : on_device) ptrs.push_back(&x);
  Tensor y = on(device, ref::nan_tensor(shape));
  ops::add_forward(ptrs, relu, y);
  Expected want(shape.numel());
  for (const Tensor& x : xs) {
    for (int64_t i = 0; i < shape.numel(); ++i) want.add(i, x.f32()[i]);
  }
  if (relu) {
    for (double& v : want.value) v = std::max(v, 0.0);
  }
  EXPECT_TRUE(ref::matches(y, want)) << inputs << " inputs" << (relu ? " + ReLU" : "");
}

class AddTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { SKIP_WITHOUT_KERNEL(ops::add_forward, GetParam()); }
};

TEST_P(AddTest, OneInputCopies) { check_add(GetParam(), 1, kSmall); }
TEST_P(AddTest, TwoInputs) { check_add(GetParam(), 2, kSmall); }
TEST_P(AddTest, ThreeInputs) { check_add(GetParam(), 3, kSmall); }
TEST_P(AddTest, FourInputs) { check_add(GetParam(), 4, kSmall); }
TEST_P(AddTest, TwoLargeInputs) { check_add(GetParam(), 2, kLarge); }
TEST_P(AddTest, ThreeLargeInputs) { check_add(GetParam(), 3, kLarge); }
TEST_P(AddTest, OneInputWithRelu) { check_add(GetParam(), 1, kSmall, true); }
TEST_P(AddTest, TwoInputsWithRelu) { check_add(GetParam(), 2, kSmall, true); }
TEST_P(AddTest, TwoLargeInputsWithRelu) { check_add(GetParam(), 2, kLarge, true); }
TEST_P(AddTest, NineInputsWithRelu) { check_add(GetParam(), 9, kSmall, true); }

// The gradient sums of the model add in place: y is the first input.
TEST_P(AddTest, InPlaceIntoTheFirstInput) {
  const Shape shape(kLarge);
  ref::Rng rng(7);
  const Tensor a = ref::uniform_tensor(shape, rng), b = ref::uniform_tensor(shape, rng);
  Tensor total = on(GetParam(), a);
  const Tensor b_dev = on(GetParam(), b);
  ops::add_forward({&total, &b_dev}, false, total);
  Expected want(shape.numel());
  for (int64_t i = 0; i < shape.numel(); ++i) {
    want.add(i, a.f32()[i]);
    want.add(i, b.f32()[i]);
  }
  EXPECT_TRUE(ref::matches(total, want));
}

// Under mixed precision the CPU's inputs and output may each be bf16 activations: the
// sum is taken in float and the output rounded once (half a bf16 step, 2^-9 relative).
TEST(AddBf16Test, MixedDtypesSumInFloatAndRoundOnce) {
  const Shape shape(kLarge);
  for (DType out_type : {DType::kFloat32, DType::kBFloat16}) {
    for (bool relu : {false, true}) {
      ref::Rng rng(11);
      std::vector<Tensor> values, stored;
      std::vector<const Tensor*> ptrs;
      for (int k = 0; k < 3; ++k) {
        values.push_back(ref::bf16_rounded(ref::uniform_tensor(shape, rng)));
        Tensor t;
        if (k != 1) {
          ops::cast_to(DType::kBFloat16, values.back(), t);  // inputs 0 and 2 in bf16
        } else {
          t = values.back();
        }
        stored.push_back(t);
      }
      for (const Tensor& t : stored) ptrs.push_back(&t);
      Tensor y = Tensor::empty(shape, Device::cpu(), out_type), y_read;
      ops::add_forward(ptrs, relu, y);
      if (out_type == DType::kBFloat16) {
        ops::cast_to(DType::kFloat32, y, y_read);
      } else {
        y_read = y;
      }
      Expected want(shape.numel());
      for (const Tensor& v : values) {
        for (int64_t i = 0; i < shape.numel(); ++i) want.add(i, v.f32()[i]);
      }
      if (relu) {
        for (double& v : want.value) v = std::max(v, 0.0);
      }
      const ref::Tolerance tol =
          out_type == DType::kBFloat16 ? ref::Tolerance{1.0 / 256, 1e-7} : ref::Tolerance{};
      EXPECT_TRUE(ref::matches(y_read, want, tol))
          << dtype_name(out_type) << " output" << (relu ? " + ReLU" : "");
    }
  }
}

INSTANTIATE_ON_OP_TEST_DEVICES(AddTest);

// Param: (shape, device). Inputs live on the host (x_, s_, dy_, read by the references)
// and on the device (dev_x_, dev_s_, dev_dy_, given to the ops).
class ChannelScaleTest : public ::testing::TestWithParam<WithDevice<Dims>> {
 protected:
  void SetUp() override {
    device_ = std::get<1>(GetParam());
    ref::Rng rng(55);
    x_ = ref::uniform_tensor(Shape(std::get<0>(GetParam())), rng);
    pixels_ = x_.dim(1) * x_.dim(2);
    c_ = x_.dim(3);
    // s is per sample and channel: a kernel that broadcasts it per sample only, or
    // indexes it by pixel, reads different values.
    s_ = ref::uniform_tensor(Shape{x_.dim(0), c_}, rng);
    dy_ = ref::uniform_tensor(x_.shape(), rng);
    dev_x_ = on(device_, x_);
    dev_s_ = on(device_, s_);
    dev_dy_ = on(device_, dy_);
  }

  Tensor nan_output(const Shape& shape) const { return on(device_, ref::nan_tensor(shape)); }

  int64_t s_index(int64_t i) const { return (i / (pixels_ * c_)) * c_ + i % c_; }

  Expected want_dx() const {
    Expected want(x_.numel());
    for (int64_t i = 0; i < x_.numel(); ++i) {
      want.add(i, static_cast<double>(dy_.f32()[i]) * s_.f32()[s_index(i)]);
    }
    return want;
  }

  Expected want_ds() const {
    Expected want(s_.numel());
    for (int64_t i = 0; i < x_.numel(); ++i) {
      want.add(s_index(i), static_cast<double>(dy_.f32()[i]) * x_.f32()[i]);
    }
    return want;
  }

  Device device_;
  Tensor x_, s_, dy_, dev_x_, dev_s_, dev_dy_;
  int64_t pixels_ = 0, c_ = 0;
};

TEST_P(ChannelScaleTest, Forward) {
  SKIP_WITHOUT_KERNEL(ops::channel_scale_forward, device_);
  Tensor y = nan_output(x_.shape());
  ops::channel_scale_forward(dev_x_, dev_s_, y);
  Expected want(x_.numel());
  for (int64_t i = 0; i < x_.numel(); ++i) {
    want.add(i, static_cast<double>(x_.f32()[i]) * s_.f32()[s_index(i)]);
  }
  EXPECT_TRUE(ref::matches(y, want));
}

TEST_P(ChannelScaleTest, BackwardBoth) {
  SKIP_WITHOUT_KERNEL(ops::channel_scale_backward, device_);
  Tensor dx = nan_output(x_.shape()), ds = nan_output(s_.shape());
  ops::channel_scale_backward(dev_x_, dev_s_, dev_dy_, &dx, &ds);
  EXPECT_TRUE(ref::matches(dx, want_dx())) << "dx";
  EXPECT_TRUE(ref::matches(ds, want_ds())) << "ds";
}

// Either gradient may be skipped (a layer whose input needs no gradient).
TEST_P(ChannelScaleTest, BackwardOnlyOne) {
  SKIP_WITHOUT_KERNEL(ops::channel_scale_backward, device_);
  Tensor dx = nan_output(x_.shape()), ds = nan_output(s_.shape());
  ops::channel_scale_backward(dev_x_, dev_s_, dev_dy_, &dx, nullptr);
  EXPECT_TRUE(ref::matches(dx, want_dx())) << "dx alone";
  ops::channel_scale_backward(dev_x_, dev_s_, dev_dy_, nullptr, &ds);
  EXPECT_TRUE(ref::matches(ds, want_ds())) << "ds alone";
}

std::string elementwise_shape_name(const ::testing::TestParamInfo<Dims>& info) {
  return "Shape" + Shape(info.param).str();
}

std::string elementwise_shape_device_name(const ::testing::TestParamInfo<WithDevice<Dims>>& info) {
  return op_test::with_device_name(info, elementwise_shape_name);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ChannelScaleTest,
                         op_test::with_every_device(::testing::Values(Dims{3, 4, 5, 6},
                                                                      Dims{2, 1, 1, 9}, kLarge)),
                         elementwise_shape_device_name);

class GlobalAvgPoolTest : public ::testing::TestWithParam<WithDevice<Dims>> {};

TEST_P(GlobalAvgPoolTest, ForwardAndBackward) {
  const auto& [dims, device] = GetParam();
  SKIP_WITHOUT_KERNEL(ops::global_avg_pool_forward, device);
  SKIP_WITHOUT_KERNEL(ops::global_avg_pool_backward, device);
  const Shape shape(dims);
  const int64_t n = shape[0], c = shape[3], pixels = shape[1] * shape[2];
  ref::Rng rng(66);
  Tensor x = ref::uniform_tensor(shape, rng);
  Tensor dy = ref::uniform_tensor(Shape{n, c}, rng);
  Tensor y = on(device, ref::nan_tensor(dy.shape()));
  Tensor dx = on(device, ref::nan_tensor(x.shape()));
  ops::global_avg_pool_forward(on(device, x), y);
  ops::global_avg_pool_backward(on(device, dy), dx);
  Expected want_y(n * c), want_dx(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t yi = (i / (pixels * c)) * c + i % c;
    want_y.add(yi, x.f32()[i] / static_cast<double>(pixels));
    want_dx.add(i, dy.f32()[yi] / static_cast<double>(pixels));
  }
  EXPECT_TRUE(ref::matches(y, want_y)) << "forward";
  EXPECT_TRUE(ref::matches(dx, want_dx)) << "backward";
}

// On the CPU x may be a bf16 activation: the same float sums of its (exactly widened)
// values, bit for bit.
TEST(GlobalAvgPoolBf16Test, Bf16InputGivesTheFloat32ResultOfItsValues) {
  const Shape shape(kLarge);
  ref::Rng rng(67);
  const Tensor x32 = ref::bf16_rounded(ref::uniform_tensor(shape, rng));
  Tensor x16;
  ops::cast_to(DType::kBFloat16, x32, x16);
  Tensor y32 = Tensor::empty(Shape{shape[0], shape[3]}), y16 = Tensor::empty(y32.shape());
  ops::global_avg_pool_forward(x32, y32);
  ops::global_avg_pool_forward(x16, y16);
  EXPECT_EQ(ref::to_double(y16), ref::to_double(y32));
  // The gradient of a bf16 x is bf16: the float32 dx rounded once.
  const Tensor dy = ref::uniform_tensor(y32.shape(), rng);
  Tensor dx32 = Tensor::empty(shape), dx16 = Tensor::empty(shape, Device::cpu(), DType::kBFloat16);
  ops::global_avg_pool_backward(dy, dx32);
  ops::global_avg_pool_backward(dy, dx16);
  Tensor want16, got, want;
  ops::cast_to(DType::kBFloat16, dx32, want16);
  ops::cast_to(DType::kFloat32, want16, want);
  ops::cast_to(DType::kFloat32, dx16, got);
  EXPECT_EQ(ref::to_double(got), ref::to_double(want));
}

INSTANTIATE_TEST_SUITE_P(Shapes, GlobalAvgPoolTest,
                         op_test::with_every_device(::testing::Values(Dims{3, 7, 5, 11},
                                                                      Dims{2, 1, 1, 4}, kLarge)),
                         elementwise_shape_device_name);

}  // namespace
}  // namespace residual
