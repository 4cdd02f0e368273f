// Every built-in layer type, made through the registry as a model would make it, checked
// against finite differences of loss = sum(y * R): input gradients and parameter gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/layer_registry.h"
#include "tests/core/gradient_check.h"

namespace residual {
namespace {

using nlohmann::json;

// How the inputs are drawn: plain uniform, away from zero (a ReLU follows), or distinct and
// well spaced (a max follows; ties or near-ties would make the argmax flip under eps).
enum class Values { kUniform, kAwayFromZero, kDistinct };

struct LayerCase {
  std::string label;  // the test name
  std::string type;
  json config;
  std::vector<Shape> inputs;  // with the batch dimension
  Values values = Values::kUniform;
  bool fuse_relu = false;  // as the model does when a ReLU follows
  // A ReLU on outputs the test cannot keep away from zero (they depend on the weights):
  // a smaller step crosses fewer kinks, and more of the probes may be judged one-sided.
  bool kinked = false;
};

void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.label; }

std::vector<LayerCase> layer_cases() {
  const Values kAway = Values::kAwayFromZero;
  auto kinked = [](LayerCase c) {
    c.kinked = true;
    return c;
  };
  auto fused = [&](LayerCase c) {
    c.fuse_relu = true;
    return kinked(c);
  };
  return {
      // Odd input with stride 2 and "same": the padding is asymmetric (smaller half first).
      {"Conv2D_3x3_Stride2_Same",
       "Conv2D",
       {{"filters", 4}, {"kernel_size", 3}, {"strides", 2}, {"padding", "same"}},
       {{2, 7, 7, 3}}},
      {"Conv2D_1x1", "Conv2D", {{"filters", 5}, {"kernel_size", 1}}, {{2, 4, 4, 3}}},
      // The ResNet stem: 7x7, stride 2, explicit padding 3.
      {"Conv2D_7x7_Stride2_Pad3",
       "Conv2D",
       {{"filters", 3}, {"kernel_size", 7}, {"strides", 2}, {"padding", 3}},
       {{2, 10, 10, 2}}},
      {"Conv2D_Groups2",
       "Conv2D",
       {{"filters", 4}, {"kernel_size", 3}, {"groups", 2}, {"padding", "same"}},
       {{2, 5, 5, 4}}},
      {"Conv2D_Dilation2",
       "Conv2D",
       {{"filters", 3}, {"kernel_size", 3}, {"dilation_rate", 2}, {"padding", "same"}},
       {{2, 7, 7, 2}}},
      kinked({"Conv2D_Relu",
              "Conv2D",
              {{"filters", 4}, {"kernel_size", 3}, {"activation", "relu"}},
              {{2, 6, 6, 3}}}),
      {"Conv2D_Sigmoid_RectangularKernel",
       "Conv2D",
       {{"filters", 4},
        {"kernel_size", json::array({3, 2})},
        {"strides", json::array({1, 2})},
        {"padding", "same"},
        {"activation", "sigmoid"}},
       {{2, 5, 6, 3}}},
      {"Conv2D_NoBias_AsymmetricPadding",
       "Conv2D",
       {{"filters", 3},
        {"kernel_size", 3},
        {"use_bias", false},
        {"padding", json::array({json::array({1, 0}), json::array({0, 2})})}},
       {{2, 4, 5, 2}}},
      {"DepthwiseConv2D",
       "DepthwiseConv2D",
       {{"kernel_size", 3}, {"padding", "same"}},
       {{2, 5, 5, 3}}},
      {"DepthwiseConv2D_Multiplier2_Stride2",
       "DepthwiseConv2D",
       {{"kernel_size", 3}, {"depth_multiplier", 2}, {"strides", 2}, {"padding", "same"}},
       {{2, 6, 6, 2}}},
      {"BatchNormalization", "BatchNormalization", json::object(), {{2, 4, 4, 3}}},
      fused({"BatchNormalization_FusedRelu", "BatchNormalization", json::object(), {{2, 4, 4, 3}}}),
      {"BatchNormalization_Flat", "BatchNormalization", {{"epsilon", 1e-2}}, {{6, 5}}},
      {"Activation_Relu", "Activation", {{"activation", "relu"}}, {{2, 3, 3, 4}}, kAway},
      {"Activation_Sigmoid", "Activation", {{"activation", "sigmoid"}}, {{2, 3, 3, 4}}},
      {"Activation_Softmax", "Activation", {{"activation", "softmax"}}, {{3, 7}}},
      {"Activation_Softmax_Image", "Activation", {{"activation", "softmax"}}, {{2, 2, 2, 5}}},
      {"Activation_Linear", "Activation", {{"activation", "linear"}}, {{2, 3, 3, 4}}},
      {"ReLU", "ReLU", json::object(), {{2, 3, 3, 4}}, kAway},
      {"MaxPooling2D", "MaxPooling2D", json::object(), {{2, 4, 4, 3}}, Values::kDistinct},
      // Overlapping windows: one input can be the max of two outputs.
      {"MaxPooling2D_3x3_Stride2",
       "MaxPooling2D",
       {{"pool_size", 3}, {"strides", 2}},
       {{2, 7, 7, 2}},
       Values::kDistinct},
      // The ResNet stem's pool: explicit padding, which a max must never pick.
      {"MaxPooling2D_3x3_Stride2_Pad1",
       "MaxPooling2D",
       {{"pool_size", 3}, {"strides", 2}, {"padding", 1}},
       {{2, 6, 6, 2}},
       Values::kDistinct},
      {"MaxPooling2D_Same_Even",
       "MaxPooling2D",
       {{"pool_size", 3}, {"strides", 2}, {"padding", "same"}},
       {{2, 6, 6, 2}},
       Values::kDistinct},
      {"AveragePooling2D", "AveragePooling2D", json::object(), {{2, 4, 4, 3}}},
      // "same" on an odd size: edge windows are partly padding, which the average excludes.
      {"AveragePooling2D_3x3_Stride2_Same",
       "AveragePooling2D",
       {{"pool_size", 3}, {"strides", 2}, {"padding", "same"}},
       {{2, 5, 5, 2}}},
      {"GlobalAveragePooling2D", "GlobalAveragePooling2D", json::object(), {{2, 3, 4, 5}}},
      {"ZeroPadding2D", "ZeroPadding2D", json::object(), {{2, 3, 3, 2}}},
      {"ZeroPadding2D_Asymmetric",
       "ZeroPadding2D",
       {{"padding", json::array({json::array({1, 2}), json::array({0, 3})})}},
       {{2, 3, 3, 2}}},
      {"Flatten", "Flatten", json::object(), {{2, 3, 2, 4}}},
      {"Dense", "Dense", {{"units", 4}}, {{3, 6}}},
      kinked({"Dense_Relu", "Dense", {{"units", 4}, {"activation", "relu"}}, {{3, 6}}}),
      fused({"Dense_NoBias_FusedRelu", "Dense", {{"units", 4}, {"use_bias", false}}, {{3, 6}}}),
      {"Dense_Softmax", "Dense", {{"units", 5}, {"activation", "softmax"}}, {{3, 6}}},
      {"Dropout", "Dropout", {{"rate", 0.3}}, {{2, 4, 4, 3}}},
      {"Add_2", "Add", json::object(), {{2, 3, 3, 4}, {2, 3, 3, 4}}},
      {"Add_3", "Add", json::object(), {{2, 3, 3, 4}, {2, 3, 3, 4}, {2, 3, 3, 4}}},
      fused({"Add_2_FusedRelu", "Add", json::object(), {{2, 3, 3, 4}, {2, 3, 3, 4}}}),
      {"Concatenate", "Concatenate", json::object(), {{2, 3, 3, 2}, {2, 3, 3, 1}, {2, 3, 3, 3}}},
      {"Concatenate_Flat", "Concatenate", {{"axis", -1}}, {{2, 3}, {2, 4}}},
      {"ChannelScale", "ChannelScale", json::object(), {{2, 3, 3, 4}, {2, 4}}},
      // Odd spatial size with stride 2 (ceil) and an odd number of added channels.
      {"ZeroPaddedShortcut_Stride2",
       "ZeroPaddedShortcut",
       {{"strides", 2}, {"filters", 8}},
       {{2, 5, 5, 3}}},
      {"ZeroPaddedShortcut_Stride1", "ZeroPaddedShortcut", {{"filters", 6}}, {{2, 4, 4, 4}}},
  };
}

class LayerGradientTest : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LayerGradientTest, MatchesFiniteDifferences) {
  const LayerCase& c = GetParam();
  gradcheck::Rng rng(2024);
  std::vector<Tensor> inputs;
  for (const Shape& shape : c.inputs) {
    switch (c.values) {
      case Values::kUniform:
        inputs.push_back(gradcheck::uniform(shape, rng));
        break;
      case Values::kAwayFromZero:
        inputs.push_back(gradcheck::away_from_zero(shape, rng));
        break;
      case Values::kDistinct:
        inputs.push_back(gradcheck::distinct(shape, rng));
        break;
    }
  }
  auto layer = gradcheck::make_layer(c.type, c.config, inputs, 5);
  ASSERT_EQ(layer->type(), c.type);
  if (c.fuse_relu) {
    ASSERT_TRUE(layer->fuse_following_relu()) << c.type << " refused to fuse a ReLU";
  }
  gradcheck::Options options;
  if (c.kinked) {
    options.eps = 1e-3f;
    options.max_kink_fraction = 0.4;
  }
  EXPECT_TRUE(gradcheck::check_layer(*layer, inputs, options));
}

INSTANTIATE_TEST_SUITE_P(Builtins, LayerGradientTest, ::testing::ValuesIn(layer_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& param_info) {
                           return param_info.param.label;
                         });

// A new built-in type must come with a gradient case above. Input has no gradient.
TEST(LayerGradientCoverageTest, EveryBuiltinTypeHasACase) {
  std::set<std::string> covered{"Input"};
  for (const LayerCase& c : layer_cases()) covered.insert(c.type);
  for (const std::string& type : LayerRegistry::with_builtins().types()) {
    EXPECT_TRUE(covered.count(type)) << "no gradient check for built-in layer type " << type;
  }
}

// The fused ReLU must be exactly relu(unfused): same forward values and, where the output
// is positive, the same gradients (elsewhere zero).
TEST(FusedReluTest, BatchNormalizationFusedEqualsReluOfUnfused) {
  gradcheck::Rng rng(3);
  std::vector<Tensor> in{gradcheck::uniform({2, 3, 3, 4}, rng)};
  auto plain = gradcheck::make_layer("BatchNormalization", json::object(), in, 11);
  auto fused = gradcheck::make_layer("BatchNormalization", json::object(), in, 11);
  ASSERT_TRUE(fused->fuse_following_relu());
  const PassContext ctx{true, 0, 0};
  Tensor y_plain, y_fused;
  plain->forward(gradcheck::pointers(in), y_plain, ctx);
  fused->forward(gradcheck::pointers(in), y_fused, ctx);
  const Tensor dy = gradcheck::uniform(y_plain.shape(), rng);
  Tensor masked = dy.clone();  // relu backward by hand
  for (int64_t i = 0; i < y_plain.numel(); ++i) {
    EXPECT_FLOAT_EQ(y_fused.f32()[i], std::max(0.f, y_plain.f32()[i])) << "element " << i;
    if (y_plain.f32()[i] <= 0.f) masked.f32()[i] = 0.f;
  }
  Tensor dx_plain, dx_fused;
  plain->backward(gradcheck::pointers(in), y_plain, masked, {&dx_plain}, ctx);
  fused->backward(gradcheck::pointers(in), y_fused, dy, {&dx_fused}, ctx);
  for (int64_t i = 0; i < dx_plain.numel(); ++i) {
    EXPECT_NEAR(dx_fused.f32()[i], dx_plain.f32()[i], 1e-5) << "dx element " << i;
  }
  for (size_t p = 0; p < 2; ++p) {  // gamma, beta
    const Tensor& a = plain->parameters()[p].grad;
    const Tensor& b = fused->parameters()[p].grad;
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(b.f32()[i], a.f32()[i], 1e-5);
  }
}

// A model asks only for the gradients it needs: the gradient of one input must not depend
// on whether the others were asked for.
TEST(MultiInputLayerTest, OneRequestedDxEqualsItsValueWhenAllAreRequested) {
  for (const char* type : {"Add", "Concatenate", "ChannelScale"}) {
    SCOPED_TRACE(type);
    gradcheck::Rng rng(12);
    std::vector<Tensor> in{
        gradcheck::uniform({2, 3, 3, 4}, rng),
        gradcheck::uniform(std::string(type) == "ChannelScale" ? Shape{2, 4} : Shape{2, 3, 3, 4},
                           rng)};
    auto layer = gradcheck::make_layer(type, json::object(), in, 1);
    const PassContext ctx{true, 0, 0};
    Tensor y;
    layer->forward(gradcheck::pointers(in), y, ctx);
    const Tensor dy = gradcheck::uniform(y.shape(), rng);
    Tensor all0, all1;
    layer->backward(gradcheck::pointers(in), y, dy, {&all0, &all1}, ctx);
    for (int only = 0; only < 2; ++only) {
      Tensor one;
      std::vector<Tensor*> dx{nullptr, nullptr};
      dx[only] = &one;
      layer->backward(gradcheck::pointers(in), y, dy, dx, ctx);
      EXPECT_TRUE(gradcheck::bitwise_equal(one, only == 0 ? all0 : all1)) << "input " << only;
    }
  }
}

TEST(InputLayerTest, PassesItsBatchThroughUnchanged) {
  auto layer = LayerRegistry::with_builtins().create("Input", "input", {{"shape", {4, 4, 2}}});
  EXPECT_EQ(layer->build({}), Shape({4, 4, 2}));
  gradcheck::Rng rng(1);
  const Tensor x = gradcheck::uniform({3, 4, 4, 2}, rng);
  Tensor y;
  layer->forward({&x}, y, PassContext{});
  EXPECT_TRUE(gradcheck::bitwise_equal(y, x));
}

// Dropout's mask is a function of (seed, step, layer name): the same context gives the same
// mask (which is what lets backward recompute it), another step or seed another mask.
TEST(DropoutLayerTest, MaskFollowsSeedAndStep) {
  gradcheck::Rng rng(8);
  std::vector<Tensor> in{gradcheck::uniform({4, 8, 8, 8}, rng, 1.f, 2.f)};
  auto layer = gradcheck::make_layer("Dropout", {{"rate", 0.25}}, in, 1);
  const auto x = gradcheck::pointers(in);
  Tensor a, b, other_step, other_seed, eval;
  layer->forward(x, a, PassContext{true, 10, 3});
  layer->forward(x, b, PassContext{true, 10, 3});
  layer->forward(x, other_step, PassContext{true, 10, 4});
  layer->forward(x, other_seed, PassContext{true, 11, 3});
  layer->forward(x, eval, PassContext{false, 10, 3});
  EXPECT_TRUE(gradcheck::bitwise_equal(a, b));
  EXPECT_FALSE(gradcheck::bitwise_equal(a, other_step));
  EXPECT_FALSE(gradcheck::bitwise_equal(a, other_seed));
  EXPECT_TRUE(gradcheck::bitwise_equal(eval, in[0]));
  int64_t dropped = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (a.f32()[i] == 0.f) {
      ++dropped;
    } else {
      EXPECT_FLOAT_EQ(a.f32()[i], in[0].f32()[i] / 0.75f);  // inverted dropout
    }
  }
  EXPECT_NEAR(static_cast<double>(dropped) / a.numel(), 0.25, 0.03);
}

// Keras momentum: running = momentum * running + (1 - momentum) * batch, with the
// unbiased batch variance; inference then normalises with the running statistics.
TEST(BatchNormLayerTest, TrainingUpdatesRunningStatistics) {
  gradcheck::Rng rng(4);
  std::vector<Tensor> in{gradcheck::uniform({2, 3, 3, 2}, rng, 1.f, 3.f)};
  auto layer = gradcheck::make_layer("BatchNormalization", {{"momentum", 0.75}}, in, 2);
  Tensor y;
  layer->forward(gradcheck::pointers(in), y, PassContext{true, 0, 0});
  const int64_t c = 2, count = in[0].numel() / c;
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean = 0, sq = 0;
    for (int64_t r = 0; r < count; ++r) mean += in[0].f32()[r * c + ch];
    mean /= count;
    for (int64_t r = 0; r < count; ++r) sq += std::pow(in[0].f32()[r * c + ch] - mean, 2);
    const double unbiased = sq / (count - 1);
    EXPECT_NEAR(layer->parameters()[2].value.f32()[ch], 0.25 * mean, 1e-5);
    EXPECT_NEAR(layer->parameters()[3].value.f32()[ch], 0.75 + 0.25 * unbiased, 1e-5);
  }
  EXPECT_EQ(layer->parameters()[2].name, "layer_under_test/moving_mean");
  EXPECT_FALSE(layer->parameters()[2].trainable);
}

TEST(BatchNormLayerTest, BackwardWithoutTrainingForwardIsAnError) {
  gradcheck::Rng rng(4);
  std::vector<Tensor> in{gradcheck::uniform({2, 2, 2, 2}, rng)};
  auto layer = gradcheck::make_layer("BatchNormalization", json::object(), in, 2);
  Tensor y, dx;
  layer->forward(gradcheck::pointers(in), y, PassContext{false, 0, 0});
  EXPECT_THROW(layer->backward(gradcheck::pointers(in), y, y, {&dx}, PassContext{false, 0, 0}),
               Error);
}

}  // namespace
}  // namespace residual
