// bf16 mixed precision through a whole model (PassContext::precision): a ResNet-20 step in
// bf16 lands near the fp32 step (bf16 keeps 8 significant bits) but not on it (so bf16
// really ran), an fp32 pass after a bf16 one is the fp32 pass
// bit for bit, and the weights stay fp32. The op-level checks against double references
// are in tests/ops (conv2d_test, dense_test, cast_test).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <random>
#include <vector>

#include "core/model.h"
#include "core/model_spec.h"
#include "core/device_memory.h"
#include "ops/ops.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

struct StepOutcome {
  std::vector<float> logits, gradients;  // every trainable gradient, concatenated
};

class MixedPrecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ops::CpuBf16Support bf16 = ops::cpu_bf16_support();
    if (!bf16.native) GTEST_SKIP() << "no native bf16 on this CPU (oneDNN's ISA: " << bf16.isa << ")";
    SpecOverrides overrides;
    overrides.input_hwc = {12, 12, 3};
    overrides.classes = 5;
    model_ = std::make_unique<Model>(resolve_model_spec("resnet20", overrides),
                                     test::builtin_registry());
    model_->initialize(3);
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    x_ = Tensor::empty(Shape{6, 12, 12, 3});
    for (int64_t i = 0; i < x_.numel(); ++i) x_.f32()[i] = normal(rng);
    labels_ = Tensor::empty(Shape{6}, Device::cpu(), DType::kInt32);
    for (int64_t i = 0; i < 6; ++i) labels_.data<int32_t>()[i] = static_cast<int32_t>(i % 5);
  }

  StepOutcome step(Precision precision) {
    PassContext ctx;
    ctx.training = true;
    ctx.precision = precision;
    const Tensor& logits = model_->forward(x_, ctx);
    Tensor dlogits;
    dlogits.resize_like(logits);
    ops::softmax_cross_entropy(logits, labels_, 0.f, dlogits, ops::kGradOfMean);
    StepOutcome out;
    out.logits.assign(logits.f32(), logits.f32() + logits.numel());
    model_->backward(dlogits, ctx);
    for (Parameter* p : model_->trainable_parameters()) {
      EXPECT_EQ(p->grad.dtype(), DType::kFloat32) << p->name;
      out.gradients.insert(out.gradients.end(), p->grad.f32(), p->grad.f32() + p->grad.numel());
    }
    return out;
  }

  std::unique_ptr<Model> model_;
  Tensor x_, labels_;
};

// |a - b| / |b| over whole vectors.
double relative_distance(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

// How near is near: at initialisation, with a batch of 6, batch norm's backward cancels
// most of each gradient, so the deep gradients move a lot for a tiny change of anything.
// The yardstick is the fp32 step on the input rounded to bf16 (one 0.2% perturbation,
// no other change): measured 0.10 of the gradients' norm, and the whole bf16 step 0.16;
// the logits move 0.002 and 0.007. An fp32 path taken by mistake gives 0, a bf16 operand
// read as the wrong type or a lost cast gives O(1).
TEST_F(MixedPrecisionTest, Bf16StepIsNearTheFp32StepButNotOnIt) {
  const StepOutcome fp32 = step(Precision::kFloat32);
  const StepOutcome bf16 = step(Precision::kBFloat16);
  ASSERT_EQ(fp32.gradients.size(), bf16.gradients.size());
  Tensor x_bf16;
  ops::cast_to(DType::kBFloat16, x_, x_bf16);
  ops::cast_to(DType::kFloat32, x_bf16, x_);
  const StepOutcome rounded_input = step(Precision::kFloat32);
  const double yardstick = relative_distance(rounded_input.gradients, fp32.gradients);
  const double gradients = relative_distance(bf16.gradients, fp32.gradients);
  const double logits = relative_distance(bf16.logits, fp32.logits);
  EXPECT_GT(yardstick, 1e-3);
  EXPECT_GT(gradients, 1e-5);
  EXPECT_LT(gradients, 3 * yardstick);
  EXPECT_GT(logits, 1e-5);
  EXPECT_LT(logits, 0.03);
  for (Parameter* p : model_->trainable_parameters()) {
    EXPECT_EQ(p->value.dtype(), DType::kFloat32) << p->name;
  }
}

TEST_F(MixedPrecisionTest, Fp32AfterBf16IsTheFp32StepBitForBit) {
  const StepOutcome first = step(Precision::kFloat32);
  step(Precision::kBFloat16);
  const StepOutcome again = step(Precision::kFloat32);
  EXPECT_EQ(again.logits, first.logits);
  EXPECT_EQ(again.gradients, first.gradients);
}

// Which layers may hand bf16 activations to their readers (Model::mark_bf16_consumers):
// those whose every reader reads bf16 (Conv2D, BatchNormalization, Add, ...), where a fused
// ReLU's readers stand for it, and whose output is not the model's.
std::map<std::string, bool> bf16_outputs(const std::string& layers, const std::string& output) {
  const nlohmann::json spec = nlohmann::json::parse(
      R"({"format": "residual-model", "version": 1, "name": "bf16-readers", "layers": [)" +
      layers + R"(], "outputs": [")" + output + R"("]})");
  Model model(spec, test::builtin_registry());
  std::map<std::string, bool> bf16;
  for (const ModelNode& node : model.nodes()) bf16[node.name] = node.layer->consumers_read_bf16();
  return bf16;
}

TEST(MixedPrecisionModelTest, OutputsWhoseEveryReaderReadsBf16MayBeBf16) {
  const auto bf16 = bf16_outputs(R"(
      {"name": "input", "type": "Input", "config": {"shape": [8, 8, 3]}},
      {"name": "c1", "type": "Conv2D", "inputs": ["input"],
       "config": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": false}},
      {"name": "b1", "type": "BatchNormalization", "inputs": ["c1"]},
      {"name": "r1", "type": "ReLU", "inputs": ["b1"]},
      {"name": "c2", "type": "Conv2D", "inputs": ["r1"], "config": {"filters": 4, "kernel_size": 1}},
      {"name": "b2", "type": "BatchNormalization", "inputs": ["c2"]},
      {"name": "join", "type": "Add", "inputs": ["c2", "b2"]},
      {"name": "pool", "type": "GlobalAveragePooling2D", "inputs": ["join"]},
      {"name": "max", "type": "MaxPooling2D", "inputs": ["c2"], "config": {"pool_size": 2}},
      {"name": "pool2", "type": "GlobalAveragePooling2D", "inputs": ["max"]},
      {"name": "flat", "type": "Flatten", "inputs": ["join"]},
      {"name": "both", "type": "Concatenate", "inputs": ["pool", "pool2", "flat"]},
      {"name": "fc", "type": "Dense", "inputs": ["both"], "config": {"units": 3}})",
                                 "fc");
  EXPECT_TRUE(bf16.at("c1"));     // read by b1
  EXPECT_TRUE(bf16.at("b1"));     // its fused ReLU is read by c2
  EXPECT_TRUE(bf16.at("c2"));     // read by b2, the Add and MaxPooling2D
  EXPECT_TRUE(bf16.at("b2"));     // read by the Add
  EXPECT_FALSE(bf16.at("join"));  // also read by Flatten, which reads float32 only
  EXPECT_TRUE(bf16.at("max"));    // read by a GlobalAveragePooling2D
  EXPECT_FALSE(bf16.at("pool"));  // read by Concatenate
  EXPECT_FALSE(bf16.at("fc"));    // the model's output
  EXPECT_FALSE(bf16.at("input"));
}

TEST(MixedPrecisionModelTest, ATensorThatIsTheOutputThroughAFusedReluStaysFloat32) {
  const auto bf16 = bf16_outputs(R"(
      {"name": "input", "type": "Input", "config": {"shape": [4, 4, 2]}},
      {"name": "c", "type": "Conv2D", "inputs": ["input"], "config": {"filters": 2, "kernel_size": 1}},
      {"name": "b", "type": "BatchNormalization", "inputs": ["c"]},
      {"name": "r", "type": "ReLU", "inputs": ["b"]})",
                                 "r");
  EXPECT_TRUE(bf16.at("c"));
  EXPECT_FALSE(bf16.at("b"));  // r, its fused ReLU, shares its tensor and is the output
}

// An Add whose inputs differ in dtype (a bf16 activation beside a float32 one) and whose
// output is float32: each input's gradient comes in that input's dtype, and the float32
// input's is dy itself, not dy rounded through the bf16 one. (No kernel needs native bf16.)
TEST(MixedPrecisionLayerTest, AddGivesEachInputItsGradientInItsDtype) {
  std::unique_ptr<Layer> add =
      test::builtin_registry().create("Add", "join", nlohmann::json::object());
  add->build({Shape{3}, Shape{3}});
  add->fuse_following_relu();
  PassContext ctx;
  ctx.training = true;
  ctx.precision = Precision::kBFloat16;  // consumers_read_bf16() is false: y is float32
  Tensor a32 = Tensor::empty(Shape{2, 3}), b = Tensor::empty(Shape{2, 3});
  Tensor dy = Tensor::empty(Shape{2, 3});
  const float a_values[6] = {1.f, -2.f, 0.5f, 3.f, -1.f, 2.f};
  const float b_values[6] = {0.25f, 1.f, -1.f, -4.f, 0.5f, 1.f};
  // dy's values need more than bf16's 8 significant bits.
  const float dy_values[6] = {1.0009765625f, 2.001953125f, 3.00390625f,
                              -1.0009765625f, 0.3f, 0.7f};
  for (int i = 0; i < 6; ++i) {
    a32.f32()[i] = a_values[i];
    b.f32()[i] = b_values[i];
    dy.f32()[i] = dy_values[i];
  }
  Tensor a16, y, da, db;
  ops::cast_to(DType::kBFloat16, a32, a16);
  add->forward({&a16, &b}, y, ctx);
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  add->backward({&a16, &b}, y, dy, {&da, &db}, ctx);
  ASSERT_EQ(da.dtype(), DType::kBFloat16);
  ASSERT_EQ(db.dtype(), DType::kFloat32);
  Tensor da_read;
  ops::cast_to(DType::kFloat32, da, da_read);
  for (int i = 0; i < 6; ++i) {
    const float want = a_values[i] + b_values[i] > 0.f ? dy_values[i] : 0.f;
    EXPECT_EQ(db.f32()[i], want) << i;
    EXPECT_NEAR(da_read.f32()[i], want, std::abs(want) / 256) << i;
  }
}

// A pooling layer between a bf16 producer and float32 readers pools in y's dtype: it casts
// the bf16 x up, and casts dx back down to x's dtype. (No kernel needs native bf16.)
TEST(MixedPrecisionLayerTest, MaxPoolingCastsABf16InputForAFloat32Output) {
  std::unique_ptr<Layer> pool = test::builtin_registry().create(
      "MaxPooling2D", "pool", nlohmann::json{{"pool_size", 2}});
  pool->build({Shape{2, 2, 1}});
  PassContext ctx;
  ctx.training = true;
  ctx.precision = Precision::kBFloat16;  // consumers_read_bf16() is false: y is float32
  Tensor x32 = Tensor::empty(Shape{1, 2, 2, 1}), x16, y, dx;
  const float x_values[4] = {0.5f, -3.f, 2.5f, 1.f};  // exact in bf16; the max is x[2]
  for (int i = 0; i < 4; ++i) x32.f32()[i] = x_values[i];
  ops::cast_to(DType::kBFloat16, x32, x16);
  pool->forward({&x16}, y, ctx);
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(y.f32()[0], 2.5f);
  Tensor dy = Tensor::empty(Shape{1, 1, 1, 1});
  dy.f32()[0] = 0.75f;
  pool->backward({&x16}, y, dy, {&dx}, ctx);
  ASSERT_EQ(dx.dtype(), DType::kBFloat16);
  Tensor dx_read;
  ops::cast_to(DType::kFloat32, dx, dx_read);
  const float want[4] = {0.f, 0.f, 0.75f, 0.f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(dx_read.f32()[i], want[i]) << i;
}

TEST_F(MixedPrecisionTest, Bf16IsRefusedForAModelOnAGpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: the CUDA runtime sees no GPU";
  model_->to(Device::cuda(0));
  PassContext ctx;
  ctx.precision = Precision::kBFloat16;
  const Tensor x = x_.to(Device::cuda(0));
  EXPECT_TRUE(test::has(test::error_of([&] { model_->forward(x, ctx); }),
                        "bf16 precision runs on the CPU only"));
}

}  // namespace
}  // namespace residual
