// The model zoo: every name builds, exports and re-imports; parameter and MAC counts match
// the published ones (torchvision and Keras summaries, He et al. for the CIFAR ResNets).
#include "core/zoo/zoo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/model_summary.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

using nlohmann::json;

// -1: not checked.
struct Expected {
  int64_t trainable = -1, non_trainable = -1, total = -1, macs = -1;
};

// torchvision's counts (its summaries print trainable parameters; BN buffers are extra).
const std::map<std::string, Expected>& expected_counts() {
  static const std::map<std::string, Expected> table = {
      {"resnet18", {11'689'512, -1, -1, 1'814'073'344}},
      {"resnet34", {21'797'672, -1, -1, 3'663'761'408}},
      {"resnet50", {25'557'032, 53'120, -1, 4'089'184'256}},
      {"resnet101", {44'549'160, -1, -1, -1}},
      {"resnet152", {60'192'808, -1, -1, -1}},
      {"resnet50-v1", {-1, -1, 25'636'712, -1}},  // Keras ResNet50 (conv biases)
      {"resnet20", {269'722, -1, -1, -1}},        // He et al.: 0.27M
  };
  return table;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& param_info) {
  std::string name = param_info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

class ZooModelTest : public ::testing::TestWithParam<std::string> {};

// One build per model (the large ones take a moment to initialise), checked against the
// table where it has an entry, then written out and read back.
TEST_P(ZooModelTest, BuildsCountsAndRoundTrips) {
  const std::string& name = GetParam();
  const json spec = resolve_model_spec(name, {});
  EXPECT_EQ(spec["name"], name);
  ParameterCounts counts;
  int64_t macs = 0;
  json exported;
  {
    const Model model(spec, test::builtin_registry());
    counts = count_parameters(model);
    macs = model.macs_per_sample();
    exported = model.to_json();
    ASSERT_EQ(model.output_shape().rank(), 1u);
    // ImageNet models (224 x 224) have 1000 classes, the others 10 but for the binary one.
    const int64_t classes = name == "happy-model"                         ? 1
                            : model.input_shape() == Shape({224, 224, 3}) ? 1000
                                                                          : 10;
    EXPECT_EQ(model.output_shape()[0], classes);
  }
  EXPECT_GT(counts.trainable, 0);
  EXPECT_GT(macs, 0);
  const auto it = expected_counts().find(name);
  if (it != expected_counts().end()) {
    const Expected& want = it->second;
    if (want.trainable >= 0) {
      EXPECT_EQ(counts.trainable, want.trainable);
    }
    if (want.non_trainable >= 0) {
      EXPECT_EQ(counts.non_trainable, want.non_trainable);
    }
    if (want.total >= 0) {
      EXPECT_EQ(counts.total(), want.total);
    }
    if (want.macs >= 0) {
      EXPECT_EQ(macs, want.macs);
    }
  }
  const Model reimported(exported, test::builtin_registry());
  const ParameterCounts again = count_parameters(reimported);
  EXPECT_EQ(again.trainable, counts.trainable);
  EXPECT_EQ(again.non_trainable, counts.non_trainable);
  EXPECT_EQ(reimported.macs_per_sample(), macs);
  EXPECT_EQ(reimported.to_json(), exported);  // export is a fixed point
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooModelTest, ::testing::ValuesIn(zoo_model_names()), test_name);

TEST(ZooTest, NamesCoverTheDocumentedFamilies) {
  const std::vector<std::string> names = zoo_model_names();
  for (const char* name : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                           "se-resnet50", "resnet50-v1", "resnet20", "resnet110", "resnet56-b",
                           "se-resnet20", "plain20", "plain56", "happy-model", "mnist-cnn"}) {
    EXPECT_TRUE(is_zoo_model(name)) << name;
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_FALSE(is_zoo_model("resnet19"));
  EXPECT_TRUE(test::has(test::error_of([] { zoo_model_spec("resnet19", {}); }), "resnet18"));
  ZooOptions negative;
  negative.classes = -1;
  EXPECT_THROW(zoo_model_spec("resnet20", negative), Error);
}

TEST(ZooTest, ResNet50V1WithClassesAndInputOverridden) {
  SpecOverrides overrides;
  overrides.classes = 6;
  overrides.input_hwc = {64, 64, 3};
  const Model model(resolve_model_spec("resnet50-v1", overrides), test::builtin_registry());
  EXPECT_EQ(count_parameters(model).total(), 23'600'006);
  EXPECT_EQ(model.input_shape(), Shape({64, 64, 3}));
  EXPECT_EQ(model.output_shape(), Shape({6}));
}

// gamma = 0 on the last BN of every residual branch: one per block of resnet20 (9).
TEST(ZooTest, ZeroInitResidualZeroesOneGammaPerBlock) {
  SpecOverrides overrides;
  overrides.zero_init_residual = true;
  Model model(resolve_model_spec("resnet20", overrides), test::builtin_registry());
  int zeroed = 0;
  for (Parameter* p : model.parameters()) {
    if (p->name.find("/gamma") == std::string::npos) continue;
    const float* g = p->value.f32();
    zeroed += std::all_of(g, g + p->value.numel(), [](float v) { return v == 0.f; });
  }
  EXPECT_EQ(zeroed, 9);
}

TEST(ZooTest, SummaryTotals) {
  const Model model(resolve_model_spec("resnet20", {}), test::builtin_registry());
  const std::string summary = format_summary(model);
  EXPECT_TRUE(test::has(summary, "Trainable params: 269,722"));
  EXPECT_TRUE(test::has(summary, "(None, 32, 32, 3)"));
  EXPECT_EQ(with_commas(11689512), "11,689,512");
  EXPECT_EQ(with_commas(-1000), "-1,000");
  EXPECT_EQ(with_commas(999), "999");
}

// The example files build, and those named after a zoo model are that model.
TEST(ZooTest, ModelFilesInTheRepositoryBuild) {
  const std::filesystem::path dir = std::filesystem::path(test::source_dir()) / "models";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    const Model model(resolve_model_spec(entry.path().string(), {}), test::builtin_registry());
    EXPECT_GT(count_parameters(model).trainable, 0);
    const std::string stem = entry.path().stem().string();
    if (is_zoo_model(stem)) {
      const Model zoo(resolve_model_spec(stem, {}), test::builtin_registry());
      EXPECT_EQ(count_parameters(model).total(), count_parameters(zoo).total());
      EXPECT_EQ(model.macs_per_sample(), zoo.macs_per_sample());
    }
  }
  EXPECT_GE(files, 3);
}

}  // namespace
}  // namespace residual
