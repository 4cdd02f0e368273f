// Model specs that must be refused, each with a message naming what is wrong and where:
// the CLI prints it as the only line the user sees.
#include "core/model_spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

using nlohmann::json;
using test::error_of;
using test::has;

json input_layer(const std::string& name = "input", json shape = {8, 8, 1}) {
  return {{"name", name}, {"type", "Input"}, {"config", {{"shape", shape}}}};
}

json layer(const std::string& name, const std::string& type, const std::vector<std::string>& in,
           json config = json::object()) {
  return {{"name", name}, {"type", type}, {"inputs", in}, {"config", config}};
}

json conv(const std::string& name, const std::string& in, int filters, int kernel = 3) {
  return layer(name, "Conv2D", {in}, {{"filters", filters}, {"kernel_size", kernel}});
}

json spec(json layers, const std::string& output) {
  return {{"format", "residual-model"},
          {"version", 1},
          {"name", "m"},
          {"layers", std::move(layers)},
          {"outputs", {output}}};
}

// The message of the error that building `s` raises.
std::string build_error(const json& s) {
  return error_of([&] { Model model(s, test::builtin_registry()); });
}

TEST(ModelSpecErrorTest, MalformedJsonReportsOriginLineAndColumn) {
  const std::string message = error_of(
      [] { parse_model_json("{\n  \"format\": \"residual-model\",\n  oops\n}", "m.json"); });
  EXPECT_TRUE(has(message, "m.json"));
  EXPECT_TRUE(has(message, "line 3, column 3"));
  EXPECT_FALSE(has(message, "[json.exception"));  // the library's prefix is noise to users
}

TEST(ModelSpecErrorTest, UnknownLayerType) {
  const std::string message =
      build_error(spec({input_layer(), layer("c", "Conv3D", {"input"})}, "c"));
  EXPECT_TRUE(has(message, "layer 'c'"));
  EXPECT_TRUE(has(message, "unknown layer type 'Conv3D'"));
  EXPECT_TRUE(has(message, "Conv2D"));  // the known types are listed
}

TEST(ModelSpecErrorTest, UnknownInputName) {
  const std::string message = build_error(spec({input_layer(), conv("c", "inptu", 2)}, "c"));
  EXPECT_TRUE(has(message, "layer 'c' takes input 'inptu', which is not a layer of the model"));
}

TEST(ModelSpecErrorTest, CycleNamesItsLayers) {
  const std::string message =
      build_error(spec({input_layer(), conv("a", "b", 1, 1), conv("b", "a", 1, 1),
                        layer("sum", "Add", {"input", "b"})},
                       "sum"));
  EXPECT_TRUE(has(message, "cycle"));
  EXPECT_TRUE(has(message, "'a'"));
  EXPECT_TRUE(has(message, "'b'"));
  EXPECT_FALSE(has(message, "'input'"));
}

TEST(ModelSpecErrorTest, DuplicateLayerName) {
  const std::string message =
      build_error(spec({input_layer(), conv("c", "input", 2), conv("c", "input", 3)}, "c"));
  EXPECT_TRUE(has(message, "two layers are named 'c'"));
}

// Layer names become HDF5 paths in checkpoints (parameters/<layer>/<kind>): a name that
// is empty, ".", "..", holds a '/', control characters or edge spaces, or is very long
// used to train and then leave a checkpoint that could not be loaded.
TEST(ModelSpecErrorTest, LayerNamesThatBreakCheckpointPathsAreRefused) {
  const std::vector<std::string> bad = {"",    ".",     "..",   "/abs", "x/kernel", "a/",
                                        " a",  "a ",    "a b",  "a\tb", "a\nb",   "\x01",
                                        ".a",  "-a",    "a\\b", "a\"b", "caf\xc3\xa9",
                                        std::string(129, 'a')};
  for (const std::string& name : bad) {
    const std::string message =
        build_error(spec({input_layer(), layer("flat", "Flatten", {"input"}),
                          layer(name, "Dense", {"flat"}, {{"units", 2}})},
                         name));
    // The name is shown JSON-quoted, so whitespace and control characters are visible and
    // the message stays one line.
    EXPECT_TRUE(has(message, "layer name " + json(name).dump(-1, ' ', true,
                                                          json::error_handler_t::replace)))
        << name;
    EXPECT_TRUE(has(message, "layer 3 of \"layers\"")) << name;
    EXPECT_TRUE(has(message, "1 to 128 characters")) << name;
    EXPECT_TRUE(has(message, "A-Z a-z 0-9 _ . -")) << name;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  for (const char* name : {"a", "_", "0", "conv1", "res2a_branch2a", "layer1.0.conv1",
                           "block-1_out", "A.b-c_9"}) {
    const json good = spec({input_layer(), layer("flat", "Flatten", {"input"}),
                            layer(name, "Dense", {"flat"}, {{"units", 2}})},
                           name);
    EXPECT_NO_THROW(Model(good, test::builtin_registry())) << name;
  }
  EXPECT_NO_THROW(Model(
      spec({input_layer(std::string(128, 'i')), layer("f", "Flatten", {std::string(128, 'i')})},
           "f"),
      test::builtin_registry()));
  // The Input layer's name is checked like any other.
  EXPECT_TRUE(has(build_error(spec({input_layer("in/put"), layer("f", "Flatten", {"in/put"})}, "f")),
                  "layer name \"in/put\" (layer 1 of \"layers\")"));
}

TEST(ModelSpecErrorTest, InputLayerMissingOrRepeated) {
  EXPECT_TRUE(has(build_error(spec({layer("f", "Flatten", {"f"})}, "f")), "has no Input layer"));
  const std::string two = build_error(spec({input_layer("a"), input_layer("b")}, "a"));
  EXPECT_TRUE(has(two, "two Input layers ('a' and 'b')"));
  json fed = input_layer();
  fed["inputs"] = {"input"};
  EXPECT_TRUE(has(build_error(spec({fed}, "input")), "Input layer 'input' cannot have inputs"));
  EXPECT_TRUE(has(build_error(spec({input_layer(), layer("f", "Flatten", {})}, "f")),
                  "layer 'f' has no inputs"));
}

TEST(ModelSpecErrorTest, AddOfMismatchedShapesNamesBothInputsAndShapes) {
  const std::string message =
      build_error(spec({input_layer(), conv("narrow", "input", 8), conv("wide", "input", 16),
                        layer("sum", "Add", {"narrow", "wide"})},
                       "sum"));
  EXPECT_TRUE(has(message, "layer 'sum' (Add)"));
  EXPECT_TRUE(has(message, "'narrow' has shape 6x6x8"));
  EXPECT_TRUE(has(message, "'wide' has shape 6x6x16"));
}

TEST(ModelSpecErrorTest, InputTooSmallNamesTheLayer) {
  const std::string message =
      build_error(spec({input_layer("input", {4, 4, 1}), conv("conv7", "input", 2, 7)}, "conv7"));
  EXPECT_TRUE(has(message, "layer 'conv7' (Conv2D)"));
  EXPECT_TRUE(has(message, "input 4x4x1 is too small"));
  // A zoo network on a tiny image: the layer where the size runs out is named. (ResNet-50
  // is no example: its padded stride-2 layers never shrink a size below 1, so it builds
  // for 3x16x16, as in torchvision.)
  SpecOverrides tiny;
  tiny.input_hwc = parse_chw("1x4x4");
  const std::string pooled = build_error(resolve_model_spec("mnist-cnn", tiny));
  EXPECT_TRUE(has(pooled, "layer 'pool3' (MaxPooling2D): input 1x1x256 is too small"));
  tiny.input_hwc = parse_chw("3x16x16");
  EXPECT_NO_THROW(Model(resolve_model_spec("resnet50", tiny), test::builtin_registry()));
}

TEST(ModelSpecErrorTest, UnknownConfigKeyListsTheKnownOnes) {
  const std::string message =
      build_error(spec({input_layer(), layer("c", "Conv2D", {"input"},
                                             {{"filters", 2}, {"kernel_size", 3}, {"stride", 2}})},
                       "c"));
  EXPECT_TRUE(has(message, "layer 'c' (Conv2D): unknown argument 'stride'"));
  EXPECT_TRUE(has(message, "strides"));
}

// A misspelt required key is found before the unknown-key check could report it: the
// "is required" message names the near-miss instead.
TEST(ModelSpecErrorTest, MissingRequiredKeyNamesItsMisspelling) {
  const std::string message = build_error(spec(
      {input_layer(), layer("c", "Conv2D", {"input"}, {{"filter", 2}, {"kernel_size", 3}})}, "c"));
  EXPECT_TRUE(has(message, "argument 'filters' is required"));
  EXPECT_TRUE(has(message, "'filter': a misspelling?"));
  const std::string unrelated = build_error(spec(
      {input_layer(), layer("c", "Conv2D", {"input"}, {{"units", 2}, {"kernel_size", 3}})}, "c"));
  EXPECT_TRUE(has(unrelated, "argument 'filters' is required"));
  EXPECT_FALSE(has(unrelated, "misspelling"));
}

TEST(ModelSpecErrorTest, WrongFormatOrVersion) {
  json s = spec({input_layer(), layer("f", "Flatten", {"input"})}, "f");
  Model ok(s, test::builtin_registry());  // the base spec is valid
  json wrong_format = s;
  wrong_format["format"] = "keras";
  EXPECT_TRUE(has(build_error(wrong_format), "not a residual model"));
  json newer = s;
  newer["version"] = 2;
  EXPECT_TRUE(has(build_error(newer), "version 2 is not supported"));
  json unversioned = s;
  unversioned.erase("version");
  EXPECT_TRUE(has(build_error(unversioned), "version 0 is not supported"));
  // Wrong JSON types are the user's mistake too: residual::Error, not a JSON library one.
  json numeric_format = s;
  numeric_format["format"] = 1;
  EXPECT_TRUE(has(build_error(numeric_format), "format"));
  json text_version = s;
  text_version["version"] = "1";
  EXPECT_TRUE(has(build_error(text_version), "version"));
  json numeric_name = s;
  numeric_name["name"] = 5;
  EXPECT_TRUE(has(build_error(numeric_name), "the model name must be a string"));
  EXPECT_TRUE(has(build_error(json::array()), "must be a JSON object"));
}

TEST(ModelSpecErrorTest, OutputsAndLayersLists) {
  json s = spec({input_layer(), layer("f", "Flatten", {"input"})}, "f");
  json missing = s;
  missing["outputs"] = {"g"};
  EXPECT_TRUE(has(build_error(missing), "the output 'g' is not a layer of the model"));
  json two = s;
  two["outputs"] = {"f", "input"};
  EXPECT_TRUE(has(build_error(two), "exactly one layer in \"outputs\""));
  json empty = s;
  empty["layers"] = json::array();
  EXPECT_TRUE(has(build_error(empty), "has no \"layers\" list"));
  json unnamed = s;
  unnamed["layers"][1].erase("name");
  EXPECT_TRUE(has(build_error(unnamed), "a layer without a \"name\""));
}

TEST(ModelSpecErrorTest, DenseOnAnImageSuggestsFlatten) {
  const std::string message =
      build_error(spec({input_layer(), layer("fc", "Dense", {"input"}, {{"units", 2}})}, "fc"));
  EXPECT_TRUE(has(message, "layer 'fc' (Dense)"));
  EXPECT_TRUE(has(message, "Flatten"));
}

TEST(ModelSpecTest, ResolveFilesZooNamesAndOverrides) {
  const std::string tiny = test::source_dir() + "/models/tiny-cnn.json";
  SpecOverrides overrides;
  overrides.classes = 4;
  overrides.input_hwc = {16, 16, 1};
  const Model model(resolve_model_spec(tiny, overrides), test::builtin_registry());
  EXPECT_EQ(model.input_shape(), Shape({16, 16, 1}));
  EXPECT_EQ(model.output_shape(), Shape({4}));

  const std::string unknown = error_of([] { resolve_model_spec("resnet21", {}); });
  EXPECT_TRUE(has(unknown, "unknown model 'resnet21'"));
  EXPECT_TRUE(has(unknown, "resnet20"));  // the zoo is listed
  SpecOverrides zero_init;
  zero_init.zero_init_residual = true;
  EXPECT_TRUE(has(error_of([&] { resolve_model_spec(tiny, zero_init); }), "zoo models only"));
  EXPECT_TRUE(has(error_of([] { load_model_file("/nonexistent/m.json"); }),
                  "cannot open model file '/nonexistent/m.json'"));

  json no_dense = spec({input_layer(), layer("f", "Flatten", {"input"})}, "f");
  SpecOverrides classes;
  classes.classes = 3;
  EXPECT_TRUE(has(error_of([&] { apply_overrides(no_dense, classes, "x.json"); }),
                  "x.json: --classes needs the output layer 'f' to be Dense"));
}

TEST(ModelSpecTest, ParseChwTakesPyTorchOrder) {
  EXPECT_EQ(parse_chw("3x32x24"), (std::vector<int64_t>{32, 24, 3}));
  for (const char* bad : {"3x32", "3x32x0", "3x32xa", "3x32x32x1", "-3x32x32", "3x32x32 "}) {
    EXPECT_TRUE(has(error_of([&] { parse_chw(bad); }), "CxHxW")) << bad;
  }
}

// A classifier (train, eval, predict, bench) needs one vector of logits per sample; any
// other output is refused by name and shape. Building such a model is fine: summary and
// export-model show any graph.
TEST(ModelClassifierTest, OutputMustBeOneVectorPerSample) {
  const json conv_out = spec({input_layer("input", {28, 28, 1}),
                              layer("conv1", "Conv2D", {"input"},
                                    {{"filters", 4}, {"kernel_size", 3}, {"padding", "same"}})},
                             "conv1");
  const Model image_model(conv_out, test::builtin_registry());
  EXPECT_EQ(image_model.output_shape(), Shape({28, 28, 4}));
  const std::string message = error_of([&] { image_model.classifier_outputs(); });
  EXPECT_TRUE(has(message, "model 'm'"));
  EXPECT_TRUE(has(message, "output layer 'conv1' (Conv2D)"));
  EXPECT_TRUE(has(message, "28x28x4 per sample"));
  EXPECT_TRUE(has(message, "[classes]"));
  EXPECT_TRUE(has(message, "Flatten"));

  const Model flat(spec({input_layer(), layer("flat", "Flatten", {"input"})}, "flat"),
                   test::builtin_registry());
  EXPECT_EQ(flat.classifier_outputs(), 64);
  const Model binary(spec({input_layer(), layer("flat", "Flatten", {"input"}),
                           layer("fc", "Dense", {"flat"}, {{"units", 1}})},
                          "fc"),
                     test::builtin_registry());
  EXPECT_EQ(binary.classifier_outputs(), 1);
  const Model zoo(resolve_model_spec("resnet20", {}), test::builtin_registry());
  EXPECT_EQ(zoo.classifier_outputs(), 10);
}

}  // namespace
}  // namespace residual
