// Extending residual with a layer type of your own: the README's example.
//
// A layer derives from residual::Layer and implements type(), config(), build(), forward()
// and backward(); one call to LayerRegistry::add() makes the type usable from model files.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/layer.h"
#include "core/layer_registry.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "tests/core/gradient_check.h"
#include "tests/core/test_util.h"

namespace {

// y = 2x, elementwise.
class Scale2x : public residual::Layer {
 public:
  using Layer::Layer;

  std::string type() const override { return "Scale2x"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }

  // Input shapes exclude the batch dimension; the output has the input's shape.
  residual::Shape build(const std::vector<residual::Shape>& inputs) override {
    return inputs.at(0);
  }

  void forward(const std::vector<const residual::Tensor*>& x, residual::Tensor& y,
               const residual::PassContext&) override {
    y.resize_like(*x[0]);  // reuses y's buffer from the previous step
    for (int64_t i = 0; i < y.numel(); ++i) y.f32()[i] = 2.f * x[0]->f32()[i];
  }

  // Overwrites dx (never accumulates); dx[0] is null when the input needs no gradient.
  void backward(const std::vector<const residual::Tensor*>& x, const residual::Tensor&,
                const residual::Tensor& dy, const std::vector<residual::Tensor*>& dx,
                const residual::PassContext&) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    for (int64_t i = 0; i < dy.numel(); ++i) dx[0]->f32()[i] = 2.f * dy.f32()[i];
  }
};

// The one call that makes "Scale2x" usable in model files. The factory gets the layer's
// name and its "config" object; Scale2x takes no arguments, so it ignores the config.
residual::LayerRegistry registry_with_scale2x() {
  residual::LayerRegistry registry = residual::LayerRegistry::with_builtins();
  registry.add("Scale2x", [](const std::string& name, const nlohmann::json&) {
    return std::make_unique<Scale2x>(name);
  });
  return registry;
}

constexpr const char* kModel = R"({
  "format": "residual-model", "version": 1, "name": "doubled",
  "layers": [
    {"name": "input", "type": "Input", "config": {"shape": [4, 4, 1]}},
    {"name": "flat", "type": "Flatten", "inputs": ["input"]},
    {"name": "fc", "type": "Dense", "inputs": ["flat"], "config": {"units": 3}},
    {"name": "double", "type": "Scale2x", "inputs": ["fc"]}
  ],
  "outputs": ["double"]
})";

// The same model without the custom layer, to compare against.
constexpr const char* kReference = R"({
  "format": "residual-model", "version": 1, "name": "plain",
  "layers": [
    {"name": "input", "type": "Input", "config": {"shape": [4, 4, 1]}},
    {"name": "flat", "type": "Flatten", "inputs": ["input"]},
    {"name": "fc", "type": "Dense", "inputs": ["flat"], "config": {"units": 3}}
  ],
  "outputs": ["fc"]
})";

TEST(CustomLayerTest, RegisteredTypeWorksInAJsonModel) {
  const residual::LayerRegistry registry = registry_with_scale2x();
  residual::Model model(residual::parse_model_json(kModel, "doubled.json"), registry);
  residual::Model reference(residual::parse_model_json(kReference, "plain.json"), registry);
  model.initialize(7);
  reference.initialize(7);  // same seed, same layer positions: the same Dense weights

  residual::gradcheck::Rng rng(1);
  const residual::Tensor x = residual::gradcheck::uniform({2, 4, 4, 1}, rng);
  const residual::PassContext ctx{true, 0, 0};
  const residual::Tensor y = model.forward(x, ctx).clone();
  const residual::Tensor y_ref = reference.forward(x, ctx).clone();
  ASSERT_EQ(y.shape(), residual::Shape({2, 3}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.f32()[i], 2.f * y_ref.f32()[i]);

  // d/d(fc) of sum(y * dy) is 2 dy: the Dense gradients must match the reference's for 2 dy.
  const residual::Tensor dy = residual::gradcheck::uniform(y.shape(), rng);
  residual::Tensor twice = dy.clone();
  for (int64_t i = 0; i < twice.numel(); ++i) twice.f32()[i] *= 2.f;
  model.backward(dy, ctx);
  reference.backward(twice, ctx);
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(residual::gradcheck::bitwise_equal(model.trainable_parameters()[p]->grad,
                                                   reference.trainable_parameters()[p]->grad));
  }
  // The custom type is written back out like any other.
  EXPECT_EQ(model.to_json()["layers"][3]["type"], "Scale2x");
}

TEST(CustomLayerTest, PassesTheGradientCheck) {
  Scale2x layer("double");
  layer.build({{3, 3, 2}});
  residual::gradcheck::Rng rng(2);
  std::vector<residual::Tensor> inputs{residual::gradcheck::uniform({2, 3, 3, 2}, rng)};
  EXPECT_TRUE(residual::gradcheck::check_layer(layer, inputs));
}

TEST(CustomLayerTest, UnregisteredTypeIsAnErrorListingTheKnownOnes) {
  const std::string message = residual::test::error_of([] {
    residual::Model(residual::parse_model_json(kModel, "doubled.json"),
                    residual::LayerRegistry::with_builtins());
  });
  EXPECT_TRUE(residual::test::has(message, "unknown layer type 'Scale2x'"));
  EXPECT_TRUE(residual::test::has(message, "layer 'double'"));
  EXPECT_TRUE(residual::test::has(message, "Conv2D"));
}

}  // namespace
