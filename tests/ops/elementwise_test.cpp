// add, channel_scale and global_avg_pool against double references.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using ref::Expected;

// Small shapes run on one thread; large ones (past the kernels' 2^15-element cutoff)
// exercise the OpenMP split.
using Dims = std::vector<int64_t>;  // gtest prints a vector parameter readably
const Dims kSmall{2, 3, 4, 5};
const Dims kLarge{4, 16, 16, 40};

void check_add(int inputs, const Dims& dims) {
  const Shape shape(dims);
  ref::Rng rng(100 + inputs);
  std::vector<Tensor> xs;
  std::vector<const Tensor*> ptrs;
  for (int k = 0; k < inputs; ++k) xs.push_back(ref::uniform_tensor(shape, rng));
  for (const Tensor& x : xs) ptrs.push_back(&x);
  Tensor y = ref::nan_tensor(shape);
  ops::add_forward(ptrs, y);
  Expected want(shape.numel());
  for (const Tensor& x : xs) {
    for (int64_t i = 0; i < shape.numel(); ++i) want.add(i, x.f32()[i]);
  }
  EXPECT_TRUE(ref::matches(y, want)) << inputs << " inputs";
}

TEST(Add, OneInputCopies) { check_add(1, kSmall); }
TEST(Add, TwoInputs) { check_add(2, kSmall); }
TEST(Add, ThreeInputs) { check_add(3, kSmall); }
TEST(Add, FourInputs) { check_add(4, kSmall); }
TEST(Add, TwoLargeInputs) { check_add(2, kLarge); }
TEST(Add, ThreeLargeInputs) { check_add(3, kLarge); }

class ChannelScaleTest : public ::testing::TestWithParam<Dims> {
 protected:
  void SetUp() override {
    ref::Rng rng(55);
    x_ = ref::uniform_tensor(Shape(GetParam()), rng);
    pixels_ = x_.dim(1) * x_.dim(2);
    c_ = x_.dim(3);
    // s is per sample and channel: a kernel that broadcasts it per sample only, or
    // indexes it by pixel, reads different values.
    s_ = ref::uniform_tensor(Shape{x_.dim(0), c_}, rng);
    dy_ = ref::uniform_tensor(x_.shape(), rng);
  }

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

  Tensor x_, s_, dy_;
  int64_t pixels_ = 0, c_ = 0;
};

TEST_P(ChannelScaleTest, Forward) {
  Tensor y = ref::nan_tensor(x_.shape());
  ops::channel_scale_forward(x_, s_, y);
  Expected want(x_.numel());
  for (int64_t i = 0; i < x_.numel(); ++i) {
    want.add(i, static_cast<double>(x_.f32()[i]) * s_.f32()[s_index(i)]);
  }
  EXPECT_TRUE(ref::matches(y, want));
}

TEST_P(ChannelScaleTest, BackwardBoth) {
  Tensor dx = ref::nan_tensor(x_.shape()), ds = ref::nan_tensor(s_.shape());
  ops::channel_scale_backward(x_, s_, dy_, &dx, &ds);
  EXPECT_TRUE(ref::matches(dx, want_dx())) << "dx";
  EXPECT_TRUE(ref::matches(ds, want_ds())) << "ds";
}

// Either gradient may be skipped (a layer whose input needs no gradient).
TEST_P(ChannelScaleTest, BackwardOnlyOne) {
  Tensor dx = ref::nan_tensor(x_.shape()), ds = ref::nan_tensor(s_.shape());
  ops::channel_scale_backward(x_, s_, dy_, &dx, nullptr);
  EXPECT_TRUE(ref::matches(dx, want_dx())) << "dx alone";
  ops::channel_scale_backward(x_, s_, dy_, nullptr, &ds);
  EXPECT_TRUE(ref::matches(ds, want_ds())) << "ds alone";
}

std::string shape_name(const ::testing::TestParamInfo<Dims>& info) {
  return "Shape" + Shape(info.param).str();
}

INSTANTIATE_TEST_SUITE_P(Shapes, ChannelScaleTest,
                         ::testing::Values(Dims{3, 4, 5, 6}, Dims{2, 1, 1, 9}, kLarge),
                         shape_name);

class GlobalAvgPoolTest : public ::testing::TestWithParam<Dims> {};

TEST_P(GlobalAvgPoolTest, ForwardAndBackward) {
  const Shape shape(GetParam());
  const int64_t n = shape[0], c = shape[3], pixels = shape[1] * shape[2];
  ref::Rng rng(66);
  Tensor x = ref::uniform_tensor(shape, rng);
  Tensor dy = ref::uniform_tensor(Shape{n, c}, rng);
  Tensor y = ref::nan_tensor(dy.shape()), dx = ref::nan_tensor(x.shape());
  ops::global_avg_pool_forward(x, y);
  ops::global_avg_pool_backward(dy, dx);
  Expected want_y(n * c), want_dx(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t yi = (i / (pixels * c)) * c + i % c;
    want_y.add(yi, x.f32()[i] / static_cast<double>(pixels));
    want_dx.add(i, dy.f32()[yi] / static_cast<double>(pixels));
  }
  EXPECT_TRUE(ref::matches(y, want_y)) << "forward";
  EXPECT_TRUE(ref::matches(dx, want_dx)) << "backward";
}

INSTANTIATE_TEST_SUITE_P(Shapes, GlobalAvgPoolTest,
                         ::testing::Values(Dims{3, 7, 5, 11}, Dims{2, 1, 1, 4}, kLarge),
                         shape_name);

}  // namespace
}  // namespace residual
