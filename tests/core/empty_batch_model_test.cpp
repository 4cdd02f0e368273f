// Whole zoo models on a batch of 0 samples: the shard a rank gets when the global batch is
// smaller than the world (a batch of 2 over 3 ranks). Forward, loss and backward must run,
// the loss must be 0, every parameter gradient must be exactly 0 (a sum over no samples),
// and, without synchronised BN, the running statistics must stay as they were. With
// synchronised BN the empty replica must still take part in every sum, and ends with the
// same statistics as the replica that had the samples.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/zoo/zoo.h"
#include "ops/ops.h"
#include "tests/core/gradient_check.h"
#include "tests/core/replica_group.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

// The loss the trainer uses for the model's output (sigmoid BCE for one unit, else softmax
// cross-entropy), with dlogits scaled by 1 / global_batch; returns the mean loss.
double loss_and_gradient(const Tensor& logits, int64_t global_batch, Tensor& dlogits) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  dlogits.resize_like(logits);
  if (k == 1) {
    Tensor targets = Tensor::empty(logits.shape());
    for (int64_t i = 0; i < n; ++i) targets.f32()[i] = static_cast<float>(i % 2);
    return ops::sigmoid_binary_cross_entropy(logits, targets, dlogits, 1.0 / global_batch);
  }
  Tensor labels = Tensor::empty(Shape{n}, Device::cpu(), DType::kInt32);
  for (int64_t i = 0; i < n; ++i) labels.data<int32_t>()[i] = static_cast<int32_t>(i % k);
  return ops::softmax_cross_entropy(logits, labels, 0.f, dlogits, 1.0 / global_batch);
}

void fill_gradients_with_nan(Model& model) {
  for (Parameter* p : model.trainable_parameters()) {
    p->grad.fill(std::numeric_limits<float>::quiet_NaN());
  }
}

class EmptyBatchModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EmptyBatchModelTest, ZeroSamplesGiveZeroGradientsAndKeepStatistics) {
  Model model(zoo_model_spec(GetParam(), {}), test::builtin_registry());
  std::vector<Tensor> buffers_before;
  for (Parameter* p : model.parameters()) {
    if (!p->trainable) buffers_before.push_back(p->value.clone());
  }
  const Tensor x = Tensor::empty(model.input_shape().with_batch(0));
  const PassContext ctx{true, 1, 1};
  const Tensor& logits = model.forward(x, ctx);
  ASSERT_EQ(logits.shape(), model.output_shape().with_batch(0));
  Tensor dlogits;
  EXPECT_EQ(loss_and_gradient(logits, 2, dlogits), 0.0);
  fill_gradients_with_nan(model);
  int ready = 0;
  model.on_gradient_ready([&](Parameter&) { ++ready; });
  model.backward(dlogits, ctx);
  EXPECT_EQ(ready, static_cast<int>(model.trainable_parameters().size()));
  for (Parameter* p : model.trainable_parameters()) {
    for (int64_t i = 0; i < p->grad.numel(); ++i) {
      ASSERT_EQ(p->grad.f32()[i], 0.f) << p->name << " element " << i;
    }
  }
  size_t b = 0;
  for (Parameter* p : model.parameters()) {
    if (p->trainable) continue;
    EXPECT_TRUE(gradcheck::bitwise_equal(p->value, buffers_before[b++])) << p->name;
  }
  // Inference on an empty batch too (evaluation shards can be empty as well).
  const Tensor& out = model.forward(x, PassContext{});
  EXPECT_EQ(out.shape(), model.output_shape().with_batch(0));
}

INSTANTIATE_TEST_SUITE_P(Zoo, EmptyBatchModelTest,
                         ::testing::Values("resnet20", "resnet20-b", "se-resnet20", "mnist-cnn",
                                           "happy-model"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

// Synchronised BN, a global batch of 2 over two replicas holding 2 and 0 samples. The empty
// replica adds zeros, so the full replica must compute exactly (bit for bit) what one
// process computes alone on the same 2 samples; the empty one gets zero gradients, makes the
// same sequence of sums, and keeps the same running statistics.
TEST(EmptyBatchSyncTest, Resnet20ReplicaWithNoSamples) {
  const nlohmann::json spec = zoo_model_spec("resnet20", {});
  Model alone(spec, test::builtin_registry()), full(spec, test::builtin_registry()),
      empty(spec, test::builtin_registry());
  gradcheck::Rng rng(12);
  const Tensor x = gradcheck::uniform(alone.input_shape().with_batch(2), rng);
  const Tensor no_samples = Tensor::empty(alone.input_shape().with_batch(0));
  const PassContext local{true, 1, 1};

  test::SingleReplica one;
  PassContext ctx = local;
  ctx.sync_batch_norm = &one;
  Tensor dlogits_alone;
  loss_and_gradient(alone.forward(x, ctx), 2, dlogits_alone);
  alone.backward(dlogits_alone, ctx);

  test::ReplicaGroup group(2);
  test::ReplicaGroup::Member full_sum(group, 0), empty_sum(group, 1);
  fill_gradients_with_nan(empty);
  double empty_loss = -1;
  group.run([&](int r) {
    Model& model = r == 0 ? full : empty;
    PassContext replica_ctx = local;
    replica_ctx.sync_batch_norm = r == 0 ? static_cast<ReplicaSum*>(&full_sum) : &empty_sum;
    Tensor dlogits;
    const double loss = loss_and_gradient(model.forward(r == 0 ? x : no_samples, replica_ctx), 2,
                                          dlogits);
    if (r == 1) empty_loss = loss;
    model.backward(dlogits, replica_ctx);
  });
  EXPECT_EQ(empty_loss, 0.0);
  EXPECT_EQ(full_sum.sizes, one.sizes);
  EXPECT_EQ(empty_sum.sizes, one.sizes);
  EXPECT_EQ(one.sizes.size(), 2u * 19);  // resnet20 has 19 BatchNormalization layers

  const std::vector<Parameter*> a = alone.parameters(), f = full.parameters(),
                                e = empty.parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(gradcheck::bitwise_equal(f[i]->value, a[i]->value)) << f[i]->name;
    EXPECT_TRUE(gradcheck::bitwise_equal(e[i]->value, a[i]->value)) << e[i]->name;
    if (!a[i]->trainable) continue;
    EXPECT_TRUE(gradcheck::bitwise_equal(f[i]->grad, a[i]->grad)) << f[i]->name << " gradient";
    for (int64_t j = 0; j < e[i]->grad.numel(); ++j) {
      ASSERT_EQ(e[i]->grad.f32()[j], 0.f) << e[i]->name << " element " << j;
    }
  }
}

}  // namespace
}  // namespace residual
