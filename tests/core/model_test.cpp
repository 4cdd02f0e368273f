// The model graph: backward through fan-outs and joins checked against finite differences,
// ReLU fusion that changes nothing but speed, the gradient-ready callback the distributed
// reducer relies on, whole zoo models, and determinism.
#include "core/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model_spec.h"
#include "ops/ops.h"
#include "tests/core/gradient_check.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

using nlohmann::json;

// A stem feeding three consumers: two branches joined by Add (one of them an Add of a node
// with itself) and a dead branch that does not reach the output. Listed out of order on
// purpose: the model sorts the graph itself.
constexpr const char* kFanOutModel = R"({
  "format": "residual-model", "version": 1, "name": "fan-out",
  "layers": [
    {"name": "input", "type": "Input", "config": {"shape": [6, 6, 3]}},
    {"name": "logits", "type": "Dense", "inputs": ["drop"], "config": {"units": 3}},
    {"name": "stem", "type": "Conv2D", "inputs": ["input"],
     "config": {"filters": 4, "kernel_size": 3, "padding": "same"}},
    {"name": "left", "type": "Conv2D", "inputs": ["stem"],
     "config": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": false}},
    {"name": "left_bn", "type": "BatchNormalization", "inputs": ["left"]},
    {"name": "right", "type": "Conv2D", "inputs": ["stem"],
     "config": {"filters": 4, "kernel_size": 1}},
    {"name": "twice", "type": "Add", "inputs": ["right", "right"]},
    {"name": "join", "type": "Add", "inputs": ["left_bn", "twice"]},
    {"name": "join_relu", "type": "ReLU", "inputs": ["join"]},
    {"name": "unused", "type": "Conv2D", "inputs": ["stem"],
     "config": {"filters": 2, "kernel_size": 1}},
    {"name": "pool", "type": "GlobalAveragePooling2D", "inputs": ["join_relu"]},
    {"name": "drop", "type": "Dropout", "inputs": ["pool"], "config": {"rate": 0.25}}
  ],
  "outputs": ["logits"]
})";

Tensor labels(const std::vector<int32_t>& values) {
  Tensor t =
      Tensor::empty(Shape{static_cast<int64_t>(values.size())}, Device::cpu(), DType::kInt32);
  for (size_t i = 0; i < values.size(); ++i) t.data<int32_t>()[i] = values[i];
  return t;
}

// Summed (not mean) softmax cross-entropy, so gradients are O(1) whatever the batch.
double cross_entropy(const Tensor& logits, const Tensor& targets, Tensor& dlogits) {
  dlogits.resize_like(logits);
  return ops::softmax_cross_entropy(logits, targets, 0.f, dlogits, 1.0) * logits.dim(0);
}

// Biases and BN gamma/beta away from their 0/1 defaults, which would hide gradient terms.
void randomize_bias_and_norm(Model& model, uint32_t seed) {
  gradcheck::Rng rng(seed);
  for (Parameter* p : model.trainable_parameters()) {
    if (!p->is_bias_or_norm) continue;
    const bool gamma = p->name.find("gamma") != std::string::npos;
    p->value.copy_from(
        gradcheck::uniform(p->value.shape(), rng, gamma ? 0.5f : -0.5f, gamma ? 1.5f : 0.5f));
  }
}

std::string layer_of(const std::string& parameter) {
  return parameter.substr(0, parameter.find('/'));
}

TEST(ModelGradientTest, FanOutModelMatchesFiniteDifferences) {
  Model model(parse_model_json(kFanOutModel, "fan-out.json"), test::builtin_registry());
  model.initialize(3);
  randomize_bias_and_norm(model, 4);
  gradcheck::Rng rng(5);
  const Tensor x = gradcheck::uniform({2, 6, 6, 3}, rng);
  const Tensor y = labels({0, 2});
  const PassContext ctx{true, 17, 2};
  Tensor dlogits;
  cross_entropy(model.forward(x, ctx), y, dlogits);
  // NaN first: backward must overwrite every gradient, the dead branch's included.
  for (Parameter* p : model.trainable_parameters()) {
    p->grad.fill(std::numeric_limits<float>::quiet_NaN());
  }
  model.backward(dlogits, ctx);
  std::map<std::string, Tensor> analytic;
  for (Parameter* p : model.trainable_parameters()) analytic[p->name] = p->grad.clone();

  Tensor scratch;
  const gradcheck::LossFn loss = [&] { return cross_entropy(model.forward(x, ctx), y, scratch); };
  gradcheck::Options options;
  // Every weight of the stem moves all 288 inputs of the ReLU after the join, so even a
  // small step crosses one of its kinks in about one probe of five. Those probes are still
  // checked, against the one-sided difference away from the kink.
  options.eps = 1e-3f;
  options.max_kink_fraction = 0.4;
  options.abs = 5e-4;  // the gradients here are ~0.01 to 0.3: a floor of 2e-3 would be lax
  for (Parameter* p : model.trainable_parameters()) {
    EXPECT_TRUE(gradcheck::check_tensor(p->name, p->value, analytic[p->name], loss, options, rng));
  }
  for (const char* dead : {"unused/kernel", "unused/bias"}) {
    const Tensor& g = analytic[dead];
    for (int64_t i = 0; i < g.numel(); ++i) ASSERT_EQ(g.f32()[i], 0.f) << dead;
  }
}

TEST(ModelGradientTest, GradientReadyOncePerParameterInReverseOrderWithFinalValues) {
  Model model(parse_model_json(kFanOutModel, "fan-out.json"), test::builtin_registry());
  std::map<std::string, size_t> position;  // layer -> place in the forward order
  for (size_t k = 0; k < model.order().size(); ++k) {
    position[model.nodes()[model.order()[k]].name] = k;
  }
  std::vector<std::string> calls;
  std::map<std::string, Tensor> at_call;
  model.on_gradient_ready([&](Parameter& p) {
    calls.push_back(p.name);
    at_call[p.name] = p.grad.clone();
  });
  gradcheck::Rng rng(6);
  const Tensor x = gradcheck::uniform({2, 6, 6, 3}, rng);
  const PassContext ctx{true, 1, 1};
  for (int step = 1; step <= 2; ++step) {
    calls.clear();
    const Tensor& out = model.forward(x, ctx);
    model.backward(gradcheck::uniform(out.shape(), rng), ctx);
    std::multiset<std::string> called(calls.begin(), calls.end()), expected;
    for (Parameter* p : model.trainable_parameters()) expected.insert(p->name);
    EXPECT_EQ(called, expected) << "step " << step;
    for (size_t i = 1; i < calls.size(); ++i) {
      EXPECT_GE(position[layer_of(calls[i - 1])], position[layer_of(calls[i])])
          << calls[i - 1] << " was reported before " << calls[i];
    }
    // A reducer sends the gradient when told: it must not change afterwards.
    for (Parameter* p : model.trainable_parameters()) {
      EXPECT_TRUE(gradcheck::bitwise_equal(at_call[p->name], p->grad)) << p->name;
    }
  }
}

// Conv -> BN -> ReLU, Add -> ReLU and Dense -> ReLU, fused; the same graph with a second
// consumer ("tap") on each producer, which forbids the fusion. Same values, same gradients.
json fusion_spec(bool with_taps) {
  json layers = {
      {{"name", "input"}, {"type", "Input"}, {"config", {{"shape", {6, 6, 3}}}}},
      {{"name", "conv1"},
       {"type", "Conv2D"},
       {"inputs", {"input"}},
       {"config", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}, {"use_bias", false}}}},
      {{"name", "bn1"}, {"type", "BatchNormalization"}, {"inputs", {"conv1"}}},
      {{"name", "relu1"}, {"type", "ReLU"}, {"inputs", {"bn1"}}},
      {{"name", "conv2"},
       {"type", "Conv2D"},
       {"inputs", {"relu1"}},
       {"config", {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}}}},
      {{"name", "add"}, {"type", "Add"}, {"inputs", {"relu1", "conv2"}}},
      {{"name", "relu2"},
       {"type", "Activation"},
       {"inputs", {"add"}},
       {"config", {{"activation", "relu"}}}},
      {{"name", "pool"}, {"type", "GlobalAveragePooling2D"}, {"inputs", {"relu2"}}},
      {{"name", "fc1"}, {"type", "Dense"}, {"inputs", {"pool"}}, {"config", {{"units", 5}}}},
      {{"name", "relu3"}, {"type", "ReLU"}, {"inputs", {"fc1"}}},
      {{"name", "logits"}, {"type", "Dense"}, {"inputs", {"relu3"}}, {"config", {{"units", 3}}}},
  };
  if (with_taps) {
    for (const char* producer : {"bn1", "add", "fc1"}) {
      layers.push_back(
          {{"name", std::string("tap_") + producer}, {"type", "Flatten"}, {"inputs", {producer}}});
    }
  }
  return {{"format", "residual-model"},
          {"version", 1},
          {"name", "fusion"},
          {"layers", layers},
          {"outputs", {"logits"}}};
}

int fused_count(const Model& model) {
  int n = 0;
  for (const ModelNode& node : model.nodes()) n += node.alias_of >= 0;
  return n;
}

TEST(ModelFusionTest, FusedReluGivesTheSameOutputsAndGradients) {
  Model fused(fusion_spec(false), test::builtin_registry());
  Model unfused(fusion_spec(true), test::builtin_registry());
  ASSERT_EQ(fused_count(fused), 3);
  ASSERT_EQ(fused_count(unfused), 0);
  randomize_bias_and_norm(fused, 8);
  std::map<std::string, Parameter*> by_name;
  for (Parameter* p : unfused.parameters()) by_name[p->name] = p;
  for (Parameter* p : fused.parameters()) by_name.at(p->name)->value.copy_from(p->value);

  gradcheck::Rng rng(9);
  const PassContext ctx{true, 0, 0};
  // Two steps: buffers reused from the first (and shared by a fused pair) must not leak
  // into the second.
  for (int step = 1; step <= 2; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const Tensor x = gradcheck::uniform({2, 6, 6, 3}, rng);
    const Tensor a = fused.forward(x, ctx).clone();
    const Tensor b = unfused.forward(x, ctx).clone();
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.f32()[i], b.f32()[i], 1e-5);
    const Tensor dy = gradcheck::uniform(a.shape(), rng);
    fused.backward(dy, ctx);
    unfused.backward(dy, ctx);
    for (Parameter* p : fused.trainable_parameters()) {
      const Tensor& other = by_name.at(p->name)->grad;
      for (int64_t i = 0; i < p->grad.numel(); ++i) {
        ASSERT_NEAR(p->grad.f32()[i], other.f32()[i], 1e-5) << p->name << " element " << i;
      }
    }
  }
}

// Fusion is an execution detail: the written-out graph keeps every ReLU node and the
// Dense that absorbed one still says "linear", so export -> import is a fixed point.
TEST(ModelFusionTest, ExportOfAFusedModelKeepsTheReluNodes) {
  Model model(fusion_spec(false), test::builtin_registry());
  const json exported = model.to_json();
  std::map<std::string, json> layers;
  for (const json& layer : exported["layers"]) layers[layer["name"].get<std::string>()] = layer;
  EXPECT_EQ(layers.at("relu1")["type"], "ReLU");
  EXPECT_EQ(layers.at("relu3")["inputs"], json({"fc1"}));
  EXPECT_EQ(layers.at("fc1")["config"]["activation"], "linear");
  EXPECT_EQ(Model(exported, test::builtin_registry()).to_json(), exported);
}

void expect_trains(const std::string& zoo_name, const std::vector<int32_t>& targets) {
  Model model(resolve_model_spec(zoo_name, {}), test::builtin_registry());
  model.initialize(1);
  gradcheck::Rng rng(10);
  const Tensor x = gradcheck::uniform(model.input_shape().with_batch(2), rng);
  const PassContext ctx{true, 3, 0};
  const Tensor& out = model.forward(x, ctx);
  ASSERT_EQ(out.shape(), Shape({2, 10}));
  Tensor dlogits;
  const double loss = cross_entropy(out, labels(targets), dlogits);
  EXPECT_TRUE(std::isfinite(loss));
  model.backward(dlogits, ctx);
  for (Parameter* p : model.trainable_parameters()) {
    EXPECT_TRUE(gradcheck::all_finite(p->grad)) << p->name;
    double norm = 0;
    for (int64_t i = 0; i < p->grad.numel(); ++i) norm += std::abs(p->grad.f32()[i]);
    EXPECT_GT(norm, 0) << p->name << " got no gradient";
  }
}

TEST(ModelZooTrainingTest, Resnet20ForwardBackward) { expect_trains("resnet20", {3, 7}); }
TEST(ModelZooTrainingTest, MnistCnnForwardBackward) { expect_trains("mnist-cnn", {1, 9}); }

// Same seed, same data: bit-identical gradients, across models and across steps of one
// model (backward overwrites, it never accumulates into the previous step's gradient).
TEST(ModelDeterminismTest, SameSeedGivesBitIdenticalGradients) {
  const json spec = resolve_model_spec("resnet20", {});
  Model first(spec, test::builtin_registry()), second(spec, test::builtin_registry());
  first.initialize(42);
  second.initialize(42);
  gradcheck::Rng rng(11);
  const Tensor x = gradcheck::uniform({2, 32, 32, 3}, rng);
  const Tensor dy = gradcheck::uniform({2, 10}, rng);
  const PassContext ctx{true, 5, 9};
  auto gradients = [&](Model& model) {
    model.forward(x, ctx);
    model.backward(dy, ctx);
    std::vector<Tensor> out;
    for (Parameter* p : model.trainable_parameters()) out.push_back(p->grad.clone());
    return out;
  };
  const std::vector<Tensor> a = gradients(first), b = gradients(second), again = gradients(first);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(gradcheck::bitwise_equal(a[i], b[i])) << "parameter " << i << ", two models";
    EXPECT_TRUE(gradcheck::bitwise_equal(a[i], again[i])) << "parameter " << i << ", two steps";
  }
  Model other(spec, test::builtin_registry());
  other.initialize(43);
  EXPECT_FALSE(
      gradcheck::bitwise_equal(first.parameters()[0]->value, other.parameters()[0]->value));
}

TEST(ModelTest, WrongInputOrGradientShapeIsAnError) {
  Model model(parse_model_json(kFanOutModel, "fan-out.json"), test::builtin_registry());
  const PassContext ctx{true, 0, 0};
  try {
    model.forward(Tensor::zeros({2, 5, 6, 3}), ctx);
    FAIL() << "no error for a wrong input shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("6x6x3"), std::string::npos) << e.what();
  }
  model.forward(Tensor::zeros({2, 6, 6, 3}), ctx);
  EXPECT_THROW(model.backward(Tensor::zeros({2, 4}), ctx), Error);
}

TEST(ModelTest, ParametersInForwardOrderAndProfiling) {
  Model model(parse_model_json(kFanOutModel, "fan-out.json"), test::builtin_registry());
  EXPECT_EQ(model.output_shape(), Shape({3}));
  std::vector<std::string> names;
  for (Parameter* p : model.parameters()) names.push_back(p->name);
  EXPECT_EQ(names.front(), "stem/kernel");
  EXPECT_EQ(names.back(), "logits/bias");
  EXPECT_EQ(model.parameters().size(), model.trainable_parameters().size() + 2);  // BN buffers
  model.set_profiling(true);
  model.forward(Tensor::zeros({1, 6, 6, 3}), PassContext{true, 0, 0});
  EXPECT_GT(model.profile().count("Conv2D/forward"), 0u);
}

}  // namespace
}  // namespace residual
