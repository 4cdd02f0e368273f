// The pieces of synchronised batch normalisation (ops/ops.h: batch_norm_partial_sums,
// batch_norm_moments, batch_norm_backward_partial_sums, batch_norm_backward_apply) against
// the double reference of tests/ops/batch_norm_reference.h. Each case is cut along the
// batch into shards of 1, 0, N/3 and the rest samples (an empty shard, a one-sample shard,
// uneven sizes), as ranks would hold it; the shards' sums are added as the collective
// would, and the result must be the whole batch's. Every case runs on every device: the
// shards are cut on the host and copied there; the sums are host memory on any device.
//
// Tolerances: sums accumulate in double, so they are compared at 1e-12 of the sum of
// |terms| (float-accumulated sums miss that by 10^4 or more; double rounding over these
// few thousand terms stays below 1e-13); float outputs at ref::matches' 1e-5 of their scale.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "tests/ops/batch_norm_reference.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using bn_ref::kEpsilon;
using op_test::on;
using ref::Expected;

constexpr double kSumTolerance = 1e-12;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// |got - want| <= rel * scale for every element (NaN never passes).
::testing::AssertionResult sums_match(const std::vector<double>& got,
                                      const std::vector<double>& want,
                                      const std::vector<double>& scale) {
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) <= kSumTolerance * scale[i]) continue;
    std::ostringstream out;
    out.precision(17);
    out << "element " << i << " of " << got.size() << ": got " << got[i] << ", want " << want[i]
        << " (scale " << scale[i] << ")";
    return ::testing::AssertionFailure() << out.str();
  }
  return ::testing::AssertionSuccess();
}

// Samples [first, first + count) of the host tensor t (a copy, with the same trailing
// dimensions).
Tensor samples_of(const Tensor& t, int64_t first, int64_t count) {
  Shape shape = t.shape();
  const int64_t per_sample = t.numel() / shape[0];
  shape[0] = count;
  Tensor out = Tensor::empty(shape);
  std::memcpy(out.f32(), t.f32() + first * per_sample, sizeof(float) * count * per_sample);
  return out;
}

// Copies `piece` (on any device) into the host tensor `whole`, `offset` elements in.
void copy_into(Tensor& whole, int64_t offset, const Tensor& piece) {
  const Tensor host = ref::host_copy(piece);
  std::memcpy(whole.f32() + offset, host.f32(), host.nbytes());
}

// Param: (case, device). x_shards_ and dy_shards_ are on device_.
class BatchNormSplitTest : public bn_ref::BatchNormDeviceFixture {
 protected:
  void SetUp() override {
    BatchNormDeviceFixture::SetUp();
    SKIP_WITHOUT_KERNEL(ops::batch_norm_partial_sums, device_);
    SKIP_WITHOUT_KERNEL(ops::batch_norm_moments, device_);
    SKIP_WITHOUT_KERNEL(ops::batch_norm_forward_inference, device_);
    SKIP_WITHOUT_KERNEL(ops::batch_norm_backward_partial_sums, device_);
    SKIP_WITHOUT_KERNEL(ops::batch_norm_backward_apply, device_);
    const int64_t n = shape_[0], third = n / 3;
    sizes_ = {1, 0, third, n - 1 - third};
    int64_t first = 0;
    for (int64_t size : sizes_) {
      x_shards_.push_back(on(device_, samples_of(x_, first, size)));
      dy_shards_.push_back(on(device_, samples_of(dy_, first, size)));
      first += size;
    }
  }

  // The shards' partial sums, each checked to be all zero for an empty shard, added.
  std::vector<double> added_partial_sums() const {
    std::vector<double> total(2 * c_, 0.0), sums(2 * c_);
    for (const Tensor& x : x_shards_) {
      sums.assign(sums.size(), kNaN);
      ops::batch_norm_partial_sums(x, sums.data());
      for (size_t i = 0; i < sums.size(); ++i) {
        if (x.numel() == 0) {
          EXPECT_EQ(sums[i], 0.0) << "empty shard, sum " << i;
        }
        total[i] += sums[i];
      }
    }
    return total;
  }

  // mean, var (global moments, on device_) and y (the shards' outputs, joined on the
  // host) of the split forward.
  void split_forward(Tensor& mean, Tensor& var, Tensor& y) const {
    ops::batch_norm_moments(added_partial_sums().data(), rows_, mean, var);
    int64_t offset = 0;
    for (const Tensor& x : x_shards_) {
      Tensor y_shard = nan_output(x.shape());
      ops::batch_norm_forward_inference(x, gamma_on_, beta_on_, mean, var, kEpsilon, relu_,
                                        y_shard);
      copy_into(y, offset, y_shard);
      offset += x.numel();
    }
  }

  std::vector<int64_t> sizes_;
  std::vector<Tensor> x_shards_, dy_shards_;
};

TEST_P(BatchNormSplitTest, PartialSumsArePlainDoubleSums) {
  std::vector<double> want(2 * c_, 0.0), scale(2 * c_, 0.0);
  for (int64_t i = 0; i < shape_.numel(); ++i) {
    const double x = x_.f32()[i];
    want[i % c_] += x;
    scale[i % c_] += std::abs(x);
    want[c_ + i % c_] += x * x;
    scale[c_ + i % c_] += x * x;
  }
  std::vector<double> got(2 * c_, kNaN);
  ops::batch_norm_partial_sums(x_on_, got.data());
  EXPECT_TRUE(sums_match(got, want, scale));
  std::vector<double> again(2 * c_, kNaN);
  ops::batch_norm_partial_sums(x_on_, again.data());
  EXPECT_EQ(std::memcmp(got.data(), again.data(), sizeof(double) * got.size()), 0)
      << "not deterministic";
}

TEST_P(BatchNormSplitTest, ShardSumsAddUpToTheWhole) {
  std::vector<double> whole(2 * c_), scale(2 * c_, 0.0);
  ops::batch_norm_partial_sums(x_on_, whole.data());
  for (int64_t i = 0; i < shape_.numel(); ++i) {
    const double x = x_.f32()[i];
    scale[i % c_] += std::abs(x);
    scale[c_ + i % c_] += x * x;
  }
  EXPECT_TRUE(sums_match(added_partial_sums(), whole, scale));
}

TEST_P(BatchNormSplitTest, ForwardOverShards) {
  Tensor mean = nan_output(Shape{c_}), var = nan_output(Shape{c_});
  Tensor y = ref::nan_tensor(shape_);
  split_forward(mean, var, y);
  EXPECT_TRUE(ref::matches(mean, want_mean())) << "mean";
  EXPECT_TRUE(ref::matches(var, want_var())) << "variance";
  EXPECT_TRUE(ref::matches(y, want_y())) << "y";
}

TEST_P(BatchNormSplitTest, BackwardOverShards) {
  Tensor mean = nan_output(Shape{c_}), var = nan_output(Shape{c_});
  Tensor y = ref::nan_tensor(shape_);
  split_forward(mean, var, y);
  std::vector<Tensor> y_shards;
  int64_t first = 0;
  for (int64_t size : sizes_) {
    y_shards.push_back(on(device_, samples_of(y, first, size)));
    first += size;
  }

  std::vector<double> total(2 * c_, 0.0), sums(2 * c_);
  for (size_t s = 0; s < sizes_.size(); ++s) {
    sums.assign(sums.size(), kNaN);
    ops::batch_norm_backward_partial_sums(x_shards_[s], y_shards[s], dy_shards_[s], mean, var,
                                          kEpsilon, relu_, sums.data());
    for (size_t i = 0; i < sums.size(); ++i) {
      if (sizes_[s] == 0) {
        EXPECT_EQ(sums[i], 0.0) << "empty shard, sum " << i;
      }
      total[i] += sums[i];
    }
  }
  const std::vector<double> g = masked_dy(y);
  const auto [want_dgamma, want_dbeta] = want_dgamma_dbeta(g, mean, var);
  const std::vector<double> got_dbeta(total.begin(), total.begin() + c_);
  const std::vector<double> got_dgamma(total.begin() + c_, total.end());
  EXPECT_TRUE(sums_match(got_dbeta, want_dbeta.value, want_dbeta.scale)) << "sum of dy'";
  EXPECT_TRUE(sums_match(got_dgamma, want_dgamma.value, want_dgamma.scale)) << "sum of dy' xhat";

  Tensor dx = ref::nan_tensor(shape_);
  int64_t offset = 0;
  for (size_t s = 0; s < sizes_.size(); ++s) {
    Tensor dx_shard = nan_output(x_shards_[s].shape());
    ops::batch_norm_backward_apply(x_shards_[s], y_shards[s], dy_shards_[s], gamma_on_, mean,
                                   var, kEpsilon, relu_, total.data(), rows_, dx_shard);
    copy_into(dx, offset, dx_shard);
    offset += dx_shard.numel();
  }
  EXPECT_TRUE(ref::matches(dx, want_dx(g))) << "dx";
}

INSTANTIATE_TEST_SUITE_P(Cases, BatchNormSplitTest, bn_ref::cases_on_every_device(),
                         bn_ref::case_device_name);

// Single cases, run on every device.
class BatchNormMomentsTest : public ::testing::TestWithParam<Device> {};
class BatchNormEmptyShardTest : public ::testing::TestWithParam<Device> {};

// Rounding can leave sum(x^2) / n a hair below mean^2 when every value is equal.
TEST_P(BatchNormMomentsTest, TinyNegativeVarianceIsClampedToZero) {
  SKIP_WITHOUT_KERNEL(ops::batch_norm_moments, GetParam());
  const double sums[] = {3.0, 3.0 * (1 - 1e-15)};  // three rows of 1, one channel
  Tensor mean_on = on(GetParam(), ref::nan_tensor(Shape{1}));
  Tensor var_on = on(GetParam(), ref::nan_tensor(Shape{1}));
  ops::batch_norm_moments(sums, 3, mean_on, var_on);
  const Tensor mean = ref::host_copy(mean_on), var = ref::host_copy(var_on);
  EXPECT_EQ(mean.f32()[0], 1.f);
  EXPECT_EQ(var.f32()[0], 0.f);
  EXPECT_FALSE(std::signbit(var.f32()[0]));
}

TEST_P(BatchNormMomentsTest, NoRowsIsAnError) {
  const Device device = GetParam();
  SKIP_WITHOUT_KERNEL(ops::batch_norm_moments, device);
  SKIP_WITHOUT_KERNEL(ops::batch_norm_backward_apply, device);
  const double sums[] = {0.0, 0.0};
  Tensor mean = Tensor::empty(Shape{1}, device), var = Tensor::empty(Shape{1}, device);
  EXPECT_THROW(ops::batch_norm_moments(sums, 0, mean, var), Error);
  Tensor x = Tensor::empty(Shape{0, 1}, device), dx = Tensor::empty(Shape{0, 1}, device);
  EXPECT_THROW(ops::batch_norm_backward_apply(x, x, x, mean, mean, var, kEpsilon, false, sums, 0,
                                              dx),
               Error);
}

// A shard without rows: sums of nothing are 0, and the per-row steps touch nothing.
TEST_P(BatchNormEmptyShardTest, EmptyShard) {
  const Device device = GetParam();
  SKIP_WITHOUT_KERNEL(ops::batch_norm_partial_sums, device);
  SKIP_WITHOUT_KERNEL(ops::batch_norm_backward_partial_sums, device);
  SKIP_WITHOUT_KERNEL(ops::batch_norm_forward_inference, device);
  SKIP_WITHOUT_KERNEL(ops::batch_norm_backward_apply, device);
  constexpr int64_t kC = 20;  // past one 16-lane block
  ref::Rng rng(8);
  const Tensor x = Tensor::empty(Shape{0, 3, 3, kC}, device);
  const Tensor gamma = on(device, ref::uniform_tensor(Shape{kC}, rng));
  const Tensor beta = on(device, ref::uniform_tensor(Shape{kC}, rng));
  const Tensor mean = on(device, ref::uniform_tensor(Shape{kC}, rng));
  const Tensor var = on(device, ref::uniform_tensor(Shape{kC}, rng, 0.5f, 1.f));
  for (bool relu : {false, true}) {
    std::vector<double> sums(2 * kC, kNaN);
    ops::batch_norm_partial_sums(x, sums.data());
    for (double s : sums) EXPECT_EQ(s, 0.0);
    sums.assign(sums.size(), kNaN);
    ops::batch_norm_backward_partial_sums(x, x, x, mean, var, kEpsilon, relu, sums.data());
    for (double s : sums) EXPECT_EQ(s, 0.0);
    // Global sums from other shards; this one has nothing to write.
    for (size_t i = 0; i < sums.size(); ++i) sums[i] = 0.5 * static_cast<double>(i);
    Tensor y = Tensor::empty(x.shape(), device), dx = Tensor::empty(x.shape(), device);
    ops::batch_norm_forward_inference(x, gamma, beta, mean, var, kEpsilon, relu, y);
    ops::batch_norm_backward_apply(x, y, x, gamma, mean, var, kEpsilon, relu, sums.data(), 7, dx);
  }
}

INSTANTIATE_ON_OP_TEST_DEVICES(BatchNormMomentsTest);
INSTANTIATE_ON_OP_TEST_DEVICES(BatchNormEmptyShardTest);

}  // namespace
}  // namespace residual
