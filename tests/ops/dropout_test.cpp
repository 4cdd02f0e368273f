// Inverted dropout: the kept fraction, the 1 / (1 - rate) scale, and the mask being a
// pure function of (seed, element index) so the backward reproduces it without storage.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "ops/ops.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

// 2^20 elements: the kept fraction's standard deviation is below 5e-4.
constexpr int64_t kCount = int64_t{1} << 20;

// Inputs bounded away from zero, so a zero output means "dropped" and nothing else.
Tensor nonzero_tensor(int64_t n, uint32_t seed) {
  ref::Rng rng(seed);
  Tensor t = ref::uniform_tensor(Shape{n}, rng, 0.5f, 1.5f);
  for (int64_t i = 0; i < n; i += 2) t.f32()[i] = -t.f32()[i];
  return t;
}

class DropoutTest : public ::testing::TestWithParam<float> {};

TEST_P(DropoutTest, KeepsOneMinusRateAndScalesKept) {
  const float rate = GetParam();
  const Tensor x = nonzero_tensor(kCount, 1);
  Tensor y = ref::nan_tensor(x.shape());
  ops::dropout_forward(rate, /*seed=*/42, x, y, 0);
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
  const float rate = GetParam();
  const Tensor x = nonzero_tensor(kCount, 2);
  Tensor a = ref::nan_tensor(x.shape()), b = ref::nan_tensor(x.shape()),
         c = ref::nan_tensor(x.shape());
  ops::dropout_forward(rate, 7, x, a, 0);
  ops::dropout_forward(rate, 7, x, b, 0);
  ops::dropout_forward(rate, 8, x, c, 0);
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
  const float rate = GetParam();
  const Tensor x = nonzero_tensor(kCount, 3), dy = nonzero_tensor(kCount, 4);
  Tensor y = ref::nan_tensor(x.shape()), dx = ref::nan_tensor(x.shape());
  ops::dropout_forward(rate, 1234, x, y, 0);
  ops::dropout_backward(rate, 1234, dy, dx, 0);
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
  const float rate = GetParam();
  constexpr int64_t kPrefix = 1000;
  const Tensor x = nonzero_tensor(kCount, 5);
  Tensor prefix_x = Tensor::empty(Shape{kPrefix});
  for (int64_t i = 0; i < kPrefix; ++i) prefix_x.f32()[i] = x.f32()[i];
  Tensor y = ref::nan_tensor(x.shape()), prefix_y = ref::nan_tensor(prefix_x.shape());
  ops::dropout_forward(rate, 99, x, y, 0);
  ops::dropout_forward(rate, 99, prefix_x, prefix_y, 0);
  for (int64_t i = 0; i < kPrefix; ++i) ASSERT_EQ(prefix_y.f32()[i], y.f32()[i]) << i;
}

std::string rate_name(const ::testing::TestParamInfo<float>& info) {
  return "Rate" + std::to_string(std::lround(info.param * 100));
}

INSTANTIATE_TEST_SUITE_P(Rates, DropoutTest, ::testing::Values(0.1f, 0.3f, 0.5f), rate_name);

TEST(Dropout, RateZeroIsIdentity) {
  const Tensor x = nonzero_tensor(4096, 6);
  Tensor y = ref::nan_tensor(x.shape());
  ops::dropout_forward(0.f, 3, x, y, 0);
  EXPECT_TRUE(ref::matches(y, ref::Expected(ref::to_double(x)), ref::kExact));
}

}  // namespace
}  // namespace residual
