// The layer registry: the built-in types, refusal of duplicates, unknown types that list
// the known ones, and configs that round-trip (every argument written back out).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/layer_registry.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

using nlohmann::json;
using test::error_of;
using test::has;

const std::vector<std::string> kBuiltinTypes = {
    "Activation",
    "Add",
    "AveragePooling2D",
    "BatchNormalization",
    "ChannelScale",
    "Concatenate",
    "Conv2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "Input",
    "MaxPooling2D",
    "ReLU",
    "ZeroPaddedShortcut",
    "ZeroPadding2D",
};

TEST(LayerRegistryTest, HoldsExactlyTheBuiltinTypes) {
  const LayerRegistry registry = LayerRegistry::with_builtins();
  EXPECT_EQ(registry.types(), kBuiltinTypes);  // types() is sorted
  for (const std::string& type : kBuiltinTypes) EXPECT_TRUE(registry.contains(type)) << type;
  EXPECT_FALSE(registry.contains("conv2d"));  // names are case-sensitive, as in Keras
  EXPECT_TRUE(LayerRegistry().types().empty());
}

TEST(LayerRegistryTest, DuplicateRegistrationIsRefused) {
  LayerRegistry registry = LayerRegistry::with_builtins();
  const std::string message = error_of([&] {
    registry.add("Conv2D",
                 [](const std::string&, const json&) -> std::unique_ptr<Layer> { return nullptr; });
  });
  EXPECT_TRUE(has(message, "'Conv2D' is already registered"));
  EXPECT_THROW(register_builtin_layers(registry), Error);
  EXPECT_THROW(
      registry.add(
          "", [](const std::string&, const json&) -> std::unique_ptr<Layer> { return nullptr; }),
      Error);
  EXPECT_THROW(registry.add("NoFactory", LayerFactory()), Error);
}

TEST(LayerRegistryTest, UnknownTypeNamesTheLayerAndListsTheKnownTypes) {
  const std::string message =
      error_of([] { LayerRegistry::with_builtins().create("Conv3D", "conv1", json::object()); });
  EXPECT_TRUE(has(message, "layer 'conv1'"));
  EXPECT_TRUE(has(message, "unknown layer type 'Conv3D'"));
  for (const std::string& type : kBuiltinTypes) EXPECT_TRUE(has(message, type));
}

// A minimal config per type, with a shape to build it for: config() must hold every
// argument with its default filled in, and feeding it back must give the same layer.
TEST(LayerRegistryTest, ConfigsRoundTripWithDefaultsFilledIn) {
  const std::map<std::string, std::pair<json, std::vector<Shape>>> minimal = {
      {"Activation", {{{"activation", "sigmoid"}}, {{4, 4, 2}}}},
      {"Add", {json::object(), {{4, 4, 2}, {4, 4, 2}}}},
      {"AveragePooling2D", {json::object(), {{4, 4, 2}}}},
      {"BatchNormalization", {json::object(), {{4, 4, 2}}}},
      {"ChannelScale", {json::object(), {{4, 4, 2}, {2}}}},
      {"Concatenate", {json::object(), {{4, 4, 2}, {4, 4, 1}}}},
      {"Conv2D", {{{"filters", 3}, {"kernel_size", 3}}, {{4, 4, 2}}}},
      {"Dense", {{{"units", 3}}, {{8}}}},
      {"DepthwiseConv2D", {{{"kernel_size", 3}}, {{4, 4, 2}}}},
      {"Dropout", {{{"rate", 0.5}}, {{8}}}},
      {"Flatten", {json::object(), {{4, 4, 2}}}},
      {"GlobalAveragePooling2D", {json::object(), {{4, 4, 2}}}},
      {"Input", {{{"shape", {4, 4, 2}}}, {}}},
      {"MaxPooling2D", {json::object(), {{4, 4, 2}}}},
      {"ReLU", {json::object(), {{4, 4, 2}}}},
      {"ZeroPaddedShortcut", {{{"filters", 4}}, {{4, 4, 2}}}},
      {"ZeroPadding2D", {json::object(), {{4, 4, 2}}}},
  };
  const LayerRegistry registry = LayerRegistry::with_builtins();
  ASSERT_EQ(minimal.size(), kBuiltinTypes.size());
  for (const auto& [type, setup] : minimal) {
    auto layer = registry.create(type, "a", setup.first);
    EXPECT_EQ(layer->type(), type);
    EXPECT_EQ(layer->name(), "a");
    const Shape out = layer->build(setup.second);
    const json written = layer->config();
    auto again = registry.create(type, "b", written);
    EXPECT_EQ(again->config(), written) << type;
    EXPECT_EQ(again->build(setup.second), out) << type;
    for (const auto& [key, value] : setup.first.items()) {
      EXPECT_TRUE(written.contains(key)) << type << " does not write back '" << key << "'";
    }
  }
  // Defaults spelled out, as docs/model-format.md lists them.
  const json conv = registry.create("Conv2D", "c", {{"filters", 3}, {"kernel_size", 3}})->config();
  EXPECT_EQ(conv["strides"], 1);
  EXPECT_EQ(conv["padding"], "valid");
  EXPECT_EQ(conv["dilation_rate"], 1);
  EXPECT_EQ(conv["groups"], 1);
  EXPECT_EQ(conv["use_bias"], true);
  EXPECT_EQ(conv["activation"], "linear");
  const json pool = registry.create("MaxPooling2D", "p", {{"pool_size", 3}})->config();
  EXPECT_EQ(pool["strides"], 3);  // strides default to pool_size
  const json bn = registry.create("BatchNormalization", "bn", json::object())->config();
  EXPECT_NEAR(bn["momentum"].get<double>(), 0.99, 1e-6);
  EXPECT_NEAR(bn["epsilon"].get<double>(), 1e-3, 1e-9);
}

TEST(LayerRegistryTest, InvalidArgumentsNameTheLayerAndTheKey) {
  const LayerRegistry registry = LayerRegistry::with_builtins();
  auto message = [&](const std::string& type, const json& config) {
    return error_of([&] { registry.create(type, "bad", config); });
  };
  EXPECT_TRUE(has(message("Conv2D", {{"kernel_size", 3}}), "'filters' is required"));
  EXPECT_TRUE(
      has(message("Conv2D", {{"filters", 0}, {"kernel_size", 3}}), "'filters' must be >= 1"));
  EXPECT_TRUE(has(message("Conv2D", {{"filters", 2}, {"kernel_size", 3}, {"padding", "full"}}),
                  "'padding'"));
  EXPECT_TRUE(
      has(message("Dense", {{"units", 2}, {"activation", "gelu"}}), "unknown activation 'gelu'"));
  EXPECT_TRUE(has(message("Dropout", {{"rate", 1.0}}), "'rate' must be in [0, 1)"));
  EXPECT_TRUE(has(message("Dropout", json::object()), "'rate' is required"));
  EXPECT_TRUE(has(message("BatchNormalization", {{"axis", 1}}), "'axis'"));
  EXPECT_TRUE(has(message("Input", {{"shape", {4, 0}}}), "positive integers"));
  EXPECT_TRUE(has(message("Flatten", {{"data_format", "channels_first"}}),
                  "unknown argument 'data_format' (it takes none)"));
  EXPECT_TRUE(has(message("Dense", json::array()), "config must be a JSON object"));
}

}  // namespace
}  // namespace residual
