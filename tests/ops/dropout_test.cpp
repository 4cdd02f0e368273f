// Inverted dropout: the kept fraction, the 1 / (1 - rate) scale, and the mask being a
// pure function of (seed, element index) so the backward reproduces it without storage.
// Every test runs on every device; results are read through host copies.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;

// 2^20 elements: the kept fraction's standard deviation is below 5e-4.
constexpr int64_t kCount = int64_t{1} << 20;

// Inputs bounded away from zero, so a zero output means "dropped" and nothing else.
Tensor nonzero_tensor(int64_t n, uint32_t seed) {
  ref::Rng rng(seed);
  Tensor t = ref::uniform_tensor(Shape{n}, rng, 0.5f, 1.5f);
  for (int64_t i = 0; i < n; i += 2) t.f32()[i] = -t.f32()[i];
  return t;
}

// Param: (rate, device). Inputs are built on the host; on() copies them to device_, and
// out() makes a NaN output there.
class DropoutTest : public ::testing::TestWithParam<WithDevice<float>> {
 protected:
  void SetUp() override {
    device_ = std::get<1>(GetParam());
    SKIP_WITHOUT_KERNEL(ops::dropout_forward, device_);
    SKIP_WITHOUT_KERNEL(ops::dropout_backward, device_);
  }
  float rate() const { return std::get<0>(GetParam()); }
  Tensor out(const Shape& shape) const { return on(device_, ref::nan_tensor(shape)); }

  Device device_;
};

TEST_P(DropoutTest, KeepsOneMinusRateAndScalesKept) {
  const float rate = this->rate();
  const Tensor x = nonzero_tensor(kCount, 1);
  Tensor y_on = out(x.shape());
  ops::dropout_forward(rate, /*seed=*/42, on(device_, x), y_on, 0);
  const Tensor y = ref::host_copy(y_on);
  int64_t kept = 0, bad = 0, first_bad = -1;
  for (int64_t i = 0; i < kCount; ++i) {
    const double got = y.f32()[i];
    if (got == 0.0) continue;
    ++kept;
    const double want = x.f32()[i] / (1.0 - rate);
    if (!(std::abs(got - want) <= 1e-6 * std::abs(want))) {
      if (bad++ == 0) first_bad = i;
    }
  }
  EXPECT_EQ(bad, 0) << "kept values not x / (1 - rate), first at " << first_bad << ": got "
                    << y.f32()[first_bad] << " for x " << x.f32()[first_bad];
  // 10 standard deviations of the binomial fraction: fails only on a biased mask.
  const double sigma = std::sqrt(rate * (1.0 - rate) / kCount);
  EXPECT_NEAR(static_cast<double>(kept) / kCount, 1.0 - rate, 10 * sigma + 1e-9);
}

TEST_P(DropoutTest, SameSeedSameMaskOtherSeedOtherMask) {
  const float rate = this->rate();
  const Tensor x = on(device_, nonzero_tensor(kCount, 2));
  Tensor a_on = out(x.shape()), b_on = out(x.shape()), c_on = out(x.shape());
  ops::dropout_forward(rate, 7, x, a_on, 0);
  ops::dropout_forward(rate, 7, x, b_on, 0);
  ops::dropout_forward(rate, 8, x, c_on, 0);
  const Tensor a = ref::host_copy(a_on), b = ref::host_copy(b_on), c = ref::host_copy(c_on);
  int64_t same_seed_diffs = 0, other_seed_diffs = 0;
  for (int64_t i = 0; i < kCount; ++i) {
    same_seed_diffs += (a.f32()[i] == 0.f) != (b.f32()[i] == 0.f);
    other_seed_diffs += (a.f32()[i] == 0.f) != (c.f32()[i] == 0.f);
  }
  EXPECT_EQ(same_seed_diffs, 0);
  // Independent masks differ where exactly one drops: 2 * rate * (1 - rate) of elements.
  const double expected = 2.0 * rate * (1.0 - rate);
  EXPECT_NEAR(static_cast<double>(other_seed_diffs) / kCount, expected, 0.01);
}

TEST_P(DropoutTest, BackwardAppliesTheForwardMask) {
  const float rate = this->rate();
  const Tensor x = nonzero_tensor(kCount, 3), dy = nonzero_tensor(kCount, 4);
  Tensor y_on = out(x.shape()), dx_on = out(x.shape());
  ops::dropout_forward(rate, 1234, on(device_, x), y_on, 0);
  ops::dropout_backward(rate, 1234, on(device_, dy), dx_on, 0);
  const Tensor y = ref::host_copy(y_on), dx = ref::host_copy(dx_on);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < kCount; ++i) {
    const bool kept = y.f32()[i] != 0.f;
    const double want = kept ? dy.f32()[i] / (1.0 - rate) : 0.0;
    mismatches += !(std::abs(dx.f32()[i] - want) <= 1e-6 * std::abs(want));
  }
  EXPECT_EQ(mismatches, 0);
}

// The mask of element i does not depend on the tensor's size (nor so on how the work
// is split): a prefix drops exactly what the whole tensor drops there.
TEST_P(DropoutTest, MaskDependsOnlyOnSeedAndIndex) {
  const float rate = this->rate();
  constexpr int64_t kPrefix = 1000;
  const Tensor x = nonzero_tensor(kCount, 5);
  Tensor prefix_x = Tensor::empty(Shape{kPrefix});
  for (int64_t i = 0; i < kPrefix; ++i) prefix_x.f32()[i] = x.f32()[i];
  Tensor y_on = out(x.shape()), prefix_y_on = out(prefix_x.shape());
  ops::dropout_forward(rate, 99, on(device_, x), y_on, 0);
  ops::dropout_forward(rate, 99, on(device_, prefix_x), prefix_y_on, 0);
  const Tensor y = ref::host_copy(y_on), prefix_y = ref::host_copy(prefix_y_on);
  for (int64_t i = 0; i < kPrefix; ++i) ASSERT_EQ(prefix_y.f32()[i], y.f32()[i]) << i;
}

std::string rate_name(const ::testing::TestParamInfo<float>& info) {
  return "Rate" + std::to_string(std::lround(info.param * 100));
}

std::string rate_device_name(const ::testing::TestParamInfo<WithDevice<float>>& info) {
  return op_test::with_device_name(info, rate_name);
}

INSTANTIATE_TEST_SUITE_P(Rates, DropoutTest,
                         op_test::with_every_device(::testing::Values(0.1f, 0.3f, 0.5f)),
                         rate_device_name);

class DropoutRateZeroTest : public ::testing::TestWithParam<Device> {};

TEST_P(DropoutRateZeroTest, RateZeroIsIdentity) {
  const Device device = GetParam();
  SKIP_WITHOUT_KERNEL(ops::dropout_forward, device);
  const Tensor x = nonzero_tensor(4096, 6);
  Tensor y = on(device, ref::nan_tensor(x.shape()));
  ops::dropout_forward(0.f, 3, on(device, x), y, 0);
  EXPECT_TRUE(ref::matches(y, ref::Expected(ref::to_double(x)), ref::kExact));
}

INSTANTIATE_ON_OP_TEST_DEVICES(DropoutRateZeroTest);

}  // namespace
}  // namespace residual
