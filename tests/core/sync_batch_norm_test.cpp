// BatchNormalization's synchronised path (PassContext::sync_batch_norm): finite-difference
// gradients with one replica, the collective contract (one sum per forward and per
// backward, also on an empty shard), errors, and equivalence with one layer on the whole
// batch when k replicas on threads each hold an uneven shard.
//
// Equivalence tolerance: 1e-5 of each element's scale (the sum of |terms| forming it, as in
// tests/ops/reference.h) + 1e-7. The replicas take statistics from plain double sums and
// normalise with the float-rounded moments; the single layer takes them from shifted
// float-block sums and normalises with double moments: both are float32 results a few
// ulps (1.2e-7 each) from exact, never bitwise equal, and 1e-5 is the project's single-op
// float32 tolerance. What must be bitwise equal is equal across replicas: the statistics
// every replica keeps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/core/gradient_check.h"
#include "tests/core/replica_group.h"
#include "tests/core/test_util.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using nlohmann::json;

constexpr float kEpsilon = 1e-3f;  // the layer's default

struct SyncCase {
  std::string label;
  json config;
  Shape input;
  bool fuse_relu = false;
};

class SyncBatchNormGradientTest : public ::testing::TestWithParam<SyncCase> {};

// One replica: the synchronised path must be a correct batch norm by itself.
TEST_P(SyncBatchNormGradientTest, MatchesFiniteDifferences) {
  const SyncCase& c = GetParam();
  gradcheck::Rng rng(2024);
  std::vector<Tensor> inputs{gradcheck::uniform(c.input, rng)};
  auto layer = gradcheck::make_layer("BatchNormalization", c.config, inputs, 5);
  gradcheck::Options options;
  if (c.fuse_relu) {
    ASSERT_TRUE(layer->fuse_following_relu());
    options.eps = 1e-3f;  // as layer_gradient_test.cpp for a fused ReLU
    options.max_kink_fraction = 0.4;
  }
  test::SingleReplica one;
  options.ctx.sync_batch_norm = &one;
  EXPECT_TRUE(gradcheck::check_layer(*layer, inputs, options));
  EXPECT_FALSE(one.sizes.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SyncBatchNormGradientTest,
    ::testing::Values(SyncCase{"Image", json::object(), {2, 4, 4, 3}},
                      SyncCase{"Image_FusedRelu", json::object(), {2, 4, 4, 3}, true},
                      SyncCase{"Flat", {{"epsilon", 1e-2}}, {6, 5}},
                      SyncCase{"Flat_17Channels", {{"epsilon", 1e-2}}, {5, 17}}),
    [](const ::testing::TestParamInfo<SyncCase>& param_info) { return param_info.param.label; });

std::unique_ptr<Layer> make_bn(const Shape& input, uint64_t seed, bool relu,
                               const json& config = {{"momentum", 0.9}}) {
  std::vector<Tensor> shapes{Tensor::empty(input)};
  auto layer = gradcheck::make_layer("BatchNormalization", config, shapes, seed);
  if (relu) {
    EXPECT_TRUE(layer->fuse_following_relu());
  }
  return layer;
}

TEST(SyncBatchNormLayerTest, OneSumPerForwardAndPerBackward) {
  gradcheck::Rng rng(1);
  std::vector<Tensor> in{gradcheck::uniform({3, 2, 2, 5}, rng)};
  auto layer = make_bn(in[0].shape(), 3, false);
  test::SingleReplica one;
  PassContext ctx{true, 0, 0};
  ctx.sync_batch_norm = &one;
  Tensor y, dx;
  layer->forward(gradcheck::pointers(in), y, ctx);
  EXPECT_EQ(one.sizes, (std::vector<int64_t>{11}));  // count, then 5 sums of x and of x^2
  layer->backward(gradcheck::pointers(in), y, y, {&dx}, ctx);
  EXPECT_EQ(one.sizes, (std::vector<int64_t>{11, 10}));
  layer->backward(gradcheck::pointers(in), y, y, {nullptr}, ctx);  // no dx: still summed
  EXPECT_EQ(one.sizes, (std::vector<int64_t>{11, 10, 10}));
  PassContext inference = ctx;
  inference.training = false;
  layer->forward(gradcheck::pointers(in), y, inference);  // running statistics: no sum
  EXPECT_EQ(one.sizes.size(), 3u);
}

TEST(SyncBatchNormLayerTest, EmptyGlobalBatchIsAnError) {
  std::vector<Tensor> in{Tensor::empty(Shape{0, 2, 2, 3})};
  auto layer = make_bn(in[0].shape(), 3, false);
  test::SingleReplica one;
  PassContext ctx{true, 0, 0};
  ctx.sync_batch_norm = &one;
  Tensor y;
  const std::string message = test::error_of([&] { layer->forward(gradcheck::pointers(in), y, ctx); });
  EXPECT_TRUE(test::has(message, "layer 'layer_under_test'"));
  EXPECT_TRUE(test::has(message, "global batch of 0 rows"));
  EXPECT_EQ(one.sizes.size(), 1u) << "the sum comes first, so that every replica throws";
}

TEST(SyncBatchNormLayerTest, BackwardMustBeSynchronizedLikeItsForward) {
  gradcheck::Rng rng(1);
  std::vector<Tensor> in{gradcheck::uniform({2, 2, 2, 3}, rng)};
  auto layer = make_bn(in[0].shape(), 3, false);
  test::SingleReplica one;
  PassContext local{true, 0, 0}, synced = local;
  synced.sync_batch_norm = &one;
  Tensor y, dx;
  layer->forward(gradcheck::pointers(in), y, synced);
  EXPECT_TRUE(test::has(test::error_of([&] {
                          layer->backward(gradcheck::pointers(in), y, y, {&dx}, local);
                        }),
                        "synchronized"));
  layer->forward(gradcheck::pointers(in), y, local);
  EXPECT_TRUE(test::has(test::error_of([&] {
                          layer->backward(gradcheck::pointers(in), y, y, {&dx}, synced);
                        }),
                        "synchronized"));
}

// Summed per-channel statistics of a batch, in double: the scales of the comparisons.
struct Stats {
  std::vector<double> mean, inv_std;
};

Stats stats_of(const Tensor& x) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  Stats s{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  std::vector<double> var(c, 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) s.mean[i % c] += x.f32()[i] / static_cast<double>(rows);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double d = x.f32()[i] - s.mean[i % c];
    var[i % c] += d * d / static_cast<double>(rows);
  }
  for (int64_t i = 0; i < c; ++i) s.inv_std[i] = 1.0 / std::sqrt(var[i] + kEpsilon);
  return s;
}

// Samples [first, first + count) of t, copied.
Tensor samples_of(const Tensor& t, int64_t first, int64_t count) {
  Shape shape = t.shape();
  const int64_t per_sample = t.numel() / shape[0];
  shape[0] = count;
  Tensor out = Tensor::empty(shape);
  std::memcpy(out.f32(), t.f32() + first * per_sample, sizeof(float) * count * per_sample);
  return out;
}

// `got` (the shards' tensors joined along the batch) against the single layer's `want`.
::testing::AssertionResult joined_matches(const std::vector<Tensor>& got, const Tensor& want,
                                          const std::vector<double>& scale) {
  Tensor joined = Tensor::empty(want.shape());
  int64_t offset = 0;
  for (const Tensor& t : got) {
    std::memcpy(joined.f32() + offset, t.f32(), t.nbytes());
    offset += t.numel();
  }
  if (offset != want.numel()) return ::testing::AssertionFailure() << "shards do not add up";
  ref::Expected expected(want.numel());
  for (int64_t i = 0; i < want.numel(); ++i) {
    expected.value[i] = want.f32()[i];
    expected.scale[i] = scale[i];
  }
  return ref::matches(joined, expected);
}

struct EquivalenceCase {
  std::vector<int64_t> shards;  // samples per replica
  bool relu;
};

void PrintTo(const EquivalenceCase& c, std::ostream* out) {
  *out << "shards";
  for (int64_t s : c.shards) *out << " " << s;
  *out << (c.relu ? ", fused ReLU" : "");
}

class SyncBatchNormEquivalenceTest : public ::testing::TestWithParam<EquivalenceCase> {};

// k replicas (threads, one layer each) on uneven shards against one layer on the whole
// batch, over two steps: outputs, dx, running statistics and the replicas' dgamma and dbeta
// summed (as the gradient reducer will). Each shard's dy is the whole batch's loss gradient,
// divided by the global batch size.
TEST_P(SyncBatchNormEquivalenceTest, ReplicasMatchOneLayerOnTheWholeBatch) {
  const EquivalenceCase& c = GetParam();
  const int k = static_cast<int>(c.shards.size());
  int64_t n = 0;
  for (int64_t s : c.shards) n += s;
  const Shape sample{3, 3, 20};  // 20 channels: one full 16-lane block and a partial one
  const int64_t channels = 20;
  auto whole = make_bn(sample.with_batch(n), 7, c.relu);
  std::vector<std::unique_ptr<Layer>> replicas;
  std::vector<std::unique_ptr<test::ReplicaGroup::Member>> members;
  test::ReplicaGroup group(k);
  for (int r = 0; r < k; ++r) {
    replicas.push_back(make_bn(sample.with_batch(c.shards[r]), 7, c.relu));
    members.push_back(std::make_unique<test::ReplicaGroup::Member>(group, r));
  }
  gradcheck::Rng rng(31);
  for (uint64_t step = 0; step < 2; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const Tensor x = gradcheck::uniform(sample.with_batch(n), rng, -1.f + step, 3.f);
    Tensor dy = gradcheck::uniform(x.shape(), rng);
    for (int64_t i = 0; i < dy.numel(); ++i) dy.f32()[i] /= static_cast<float>(n);
    const PassContext local{true, 0, step};
    Tensor y, dx;
    whole->forward({&x}, y, local);
    whole->backward({&x}, y, dy, {&dx}, local);

    std::vector<Tensor> xs, dys, ys(k), dxs(k);
    for (int r = 0, first = 0; r < k; first += static_cast<int>(c.shards[r]), ++r) {
      xs.push_back(samples_of(x, first, c.shards[r]));
      dys.push_back(samples_of(dy, first, c.shards[r]));
    }
    group.run([&](int r) {
      PassContext ctx = local;
      ctx.sync_batch_norm = members[r].get();
      replicas[r]->forward({&xs[r]}, ys[r], ctx);
      replicas[r]->backward({&xs[r]}, ys[r], dys[r], {&dxs[r]}, ctx);
    });

    // Scales: |terms| of y = (x - mean) * s + beta and of the closed-form dx, dgamma, dbeta.
    const Stats st = stats_of(x);
    const std::deque<Parameter>& p = whole->parameters();  // gamma, beta, mean, variance
    std::vector<double> y_scale(x.numel()), dx_scale(x.numel());
    std::vector<double> mean_g(channels, 0.0), mean_gx(channels, 0.0);
    std::vector<double> dgamma_scale(channels, 0.0), dbeta_scale(channels, 0.0);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t ch = i % channels;
      const double g = (!c.relu || y.f32()[i] > 0.f) ? dy.f32()[i] : 0.0;
      const double xhat = (x.f32()[i] - st.mean[ch]) * st.inv_std[ch];
      mean_g[ch] += std::abs(g) / static_cast<double>(n);
      mean_gx[ch] += std::abs(g * xhat) / static_cast<double>(n);
      dgamma_scale[ch] += std::abs(g * xhat);
      dbeta_scale[ch] += std::abs(g);
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t ch = i % channels;
      const double g = (!c.relu || y.f32()[i] > 0.f) ? dy.f32()[i] : 0.0;
      const double gamma = std::abs(p[0].value.f32()[ch]), s = gamma * st.inv_std[ch];
      const double x_term = (std::abs(x.f32()[i]) + std::abs(st.mean[ch])) * st.inv_std[ch];
      y_scale[i] = (std::abs(x.f32()[i]) + std::abs(st.mean[ch])) * s +
                   std::abs(p[1].value.f32()[ch]);
      dx_scale[i] = s * (std::abs(g) + mean_g[ch] + x_term * mean_gx[ch]);
    }
    EXPECT_TRUE(joined_matches(ys, y, y_scale)) << "y";
    EXPECT_TRUE(joined_matches(dxs, dx, dx_scale)) << "dx";
    // dgamma and dbeta: each replica's own sums, added in rank order as the reducer would.
    std::vector<Tensor> dgamma{Tensor::zeros(Shape{channels})}, dbeta{Tensor::zeros(Shape{channels})};
    for (const auto& layer : replicas) {
      for (int64_t i = 0; i < channels; ++i) {
        dgamma[0].f32()[i] += layer->parameters()[0].grad.f32()[i];
        dbeta[0].f32()[i] += layer->parameters()[1].grad.f32()[i];
      }
    }
    EXPECT_TRUE(joined_matches(dgamma, p[0].grad, dgamma_scale)) << "dgamma";
    EXPECT_TRUE(joined_matches(dbeta, p[1].grad, dbeta_scale)) << "dbeta";
    // Running statistics: the same on every replica, bit for bit, and as the single layer's.
    for (size_t b : {size_t{2}, size_t{3}}) {
      const Tensor& want = p[b].value;
      std::vector<double> scale(channels);
      for (int64_t i = 0; i < channels; ++i) scale[i] = std::abs(want.f32()[i]) + std::abs(st.mean[i]);
      EXPECT_TRUE(joined_matches({replicas[0]->parameters()[b].value}, want, scale)) << p[b].name;
      for (int r = 1; r < k; ++r) {
        EXPECT_TRUE(gradcheck::bitwise_equal(replicas[r]->parameters()[b].value,
                                             replicas[0]->parameters()[b].value))
            << p[b].name << " of replica " << r;
      }
    }
  }
  for (int r = 0; r < k; ++r) {
    // Two steps of one forward sum (1 + 2C) and one backward sum (2C), empty shard or not.
    EXPECT_EQ(members[r]->sizes, (std::vector<int64_t>{41, 40, 41, 40})) << "replica " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Shards, SyncBatchNormEquivalenceTest,
                         ::testing::Values(EquivalenceCase{{5, 4, 0}, false},
                                           EquivalenceCase{{5, 4, 0}, true},
                                           EquivalenceCase{{1, 6}, false},
                                           EquivalenceCase{{1, 6}, true},
                                           EquivalenceCase{{0, 2, 1}, true},
                                           EquivalenceCase{{7}, false}),
                         [](const ::testing::TestParamInfo<EquivalenceCase>& param_info) {
                           std::string name;
                           for (int64_t s : param_info.param.shards) {
                             name += (name.empty() ? "" : "_") + std::to_string(s);
                           }
                           return "Shards_" + name + (param_info.param.relu ? "_Relu" : "");
                         });

// A global batch of one row per channel (a flat batch of one sample) behaves as the fused
// path does: variance 0, output beta, running variance without the n / (n - 1) factor.
TEST(SyncBatchNormLayerTest, GlobalBatchOfOneRowFollowsTheFusedPath) {
  gradcheck::Rng rng(5);
  std::vector<Tensor> in{gradcheck::uniform({1, 6}, rng)};
  auto fused = make_bn(in[0].shape(), 9, false);
  auto synced = make_bn(in[0].shape(), 9, false);
  test::SingleReplica one;
  PassContext local{true, 0, 0}, sync = local;
  sync.sync_batch_norm = &one;
  Tensor y_fused, y_synced, dx_fused, dx_synced;
  fused->forward(gradcheck::pointers(in), y_fused, local);
  synced->forward(gradcheck::pointers(in), y_synced, sync);
  const Tensor dy = gradcheck::uniform(in[0].shape(), rng);
  fused->backward(gradcheck::pointers(in), y_fused, dy, {&dx_fused}, local);
  synced->backward(gradcheck::pointers(in), y_synced, dy, {&dx_synced}, sync);
  for (int64_t i = 0; i < 6; ++i) {
    // y = x * s + (beta - mean * s) with s = gamma / sqrt(eps) ~ 30: the float terms cancel
    // to beta within 1e-5 of their magnitudes (the tolerance rule used throughout).
    const double s = std::abs(synced->parameters()[0].value.f32()[i]) / std::sqrt(kEpsilon);
    const double beta = synced->parameters()[1].value.f32()[i];
    const double y_tol = 1e-5 * (2 * std::abs(in[0].f32()[i]) * s + std::abs(beta)) + 1e-7;
    EXPECT_NEAR(y_synced.f32()[i], beta, y_tol);
    EXPECT_NEAR(y_synced.f32()[i], y_fused.f32()[i], y_tol);
    // dx = s * (dy - dy - 0) = 0 up to the same cancellation.
    EXPECT_NEAR(dx_synced.f32()[i], 0.0, 1e-5 * 2 * s * std::abs(dy.f32()[i]) + 1e-7);
    EXPECT_NEAR(dx_fused.f32()[i], 0.0, 1e-5 * 2 * s * std::abs(dy.f32()[i]) + 1e-7);
    for (size_t b : {size_t{0}, size_t{1}}) {  // dgamma, dbeta
      EXPECT_NEAR(synced->parameters()[b].grad.f32()[i], fused->parameters()[b].grad.f32()[i], 1e-6);
    }
    for (size_t b : {size_t{2}, size_t{3}}) {  // running mean, variance
      EXPECT_NEAR(synced->parameters()[b].value.f32()[i], fused->parameters()[b].value.f32()[i],
                  1e-6);
    }
    EXPECT_FLOAT_EQ(synced->parameters()[3].value.f32()[i], 0.9f);  // 0.9 * 1 + 0.1 * 0
  }
}

}  // namespace
}  // namespace residual
