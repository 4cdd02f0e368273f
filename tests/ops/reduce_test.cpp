// squared_norm and scale_inplace on every device: the norm against a double sum (each
// square of a float is exact in double, so only the summation order differs), NaN and
// Inf propagation (finiteness checks rely on it), bit-identical repeat calls, and views
// that start inside their storage (gradient buckets hold parameters that way).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;

class ReduceTest : public ::testing::TestWithParam<Device> {
 protected:
  Device device() const { return GetParam(); }
};

double host_squared_norm(const Tensor& t) {
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) sum += static_cast<double>(t.f32()[i]) * t.f32()[i];
  return sum;
}

TEST_P(ReduceTest, SquaredNormMatchesADoubleSum) {
  SKIP_WITHOUT_KERNEL(ops::squared_norm, device());
  ref::Rng rng(5);
  // One element, one partial block, and more elements than the first pass has threads.
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{300001}}) {
    const Tensor x = ref::uniform_tensor(Shape{n}, rng, -3.f, 3.f);
    const double want = host_squared_norm(x);
    EXPECT_TRUE(ref::matches(ops::squared_norm(on(device(), x)), want, want, {1e-10, 0.0}))
        << n << " elements";
  }
}

TEST_P(ReduceTest, SquaredNormRepeatsBitForBit) {
  SKIP_WITHOUT_KERNEL(ops::squared_norm, device());
  ref::Rng rng(6);
  const Tensor x = on(device(), ref::uniform_tensor(Shape{123457}, rng));
  const double first = ops::squared_norm(x), second = ops::squared_norm(x);
  EXPECT_EQ(std::memcmp(&first, &second, sizeof(double)), 0) << first << " vs " << second;
}

TEST_P(ReduceTest, SquaredNormPropagatesNanAndInf) {
  SKIP_WITHOUT_KERNEL(ops::squared_norm, device());
  ref::Rng rng(7);
  Tensor x = ref::uniform_tensor(Shape{5000}, rng);
  x.f32()[4321] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isinf(ops::squared_norm(on(device(), x))));
  x.f32()[17] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(ops::squared_norm(on(device(), x))));
}

TEST_P(ReduceTest, SquaredNormOfAViewReadsOnlyTheView) {
  SKIP_WITHOUT_KERNEL(ops::squared_norm, device());
  ref::Rng rng(8);
  const Tensor whole = ref::uniform_tensor(Shape{300}, rng);
  const Tensor host_view = whole.view_at(37, Shape{100});
  const double want = host_squared_norm(host_view);
  const Tensor view = on(device(), whole).view_at(37, Shape{100});
  EXPECT_TRUE(ref::matches(ops::squared_norm(view), want, want, {1e-10, 0.0}));
}

TEST_P(ReduceTest, ScaleInplaceRoundsLikeAFloatMultiply) {
  SKIP_WITHOUT_KERNEL(ops::scale_inplace, device());
  ref::Rng rng(9);
  const float factor = 0.3f;
  for (int64_t n : {int64_t{0}, int64_t{7}, int64_t{70001}}) {
    const Tensor host = ref::uniform_tensor(Shape{n}, rng);
    std::vector<double> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) want[i] = host.f32()[i] * factor;  // a float product
    Tensor x = on(device(), host);
    ops::scale_inplace(x, factor);
    EXPECT_TRUE(ref::matches(x, ref::Expected(want), ref::kExact)) << n << " elements";
  }
}

INSTANTIATE_ON_OP_TEST_DEVICES(ReduceTest);

}  // namespace
}  // namespace residual
