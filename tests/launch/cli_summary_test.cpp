// `residual summary` and `residual export-model`, run as a user would: the totals of the
// zoo models (the published parameter counts and MACs) and the export round trip.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/launch/cli_runner.h"

namespace residual::cli_test {
namespace {

// The line of `out` that starts with `prefix`, or "" when none does.
std::string line_starting(const std::string& out, const std::string& prefix) {
  for (const std::string& line : lines_of(out)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

// Checks every expected line prefix: a totals line must equal its expectation exactly,
// the MACs line up to its exact count in parentheses.
void expect_totals(const std::string& out, const std::vector<std::string>& expected) {
  for (const std::string& want : expected) {
    const std::string key = want.substr(0, want.find(':') + 1);
    std::string got = line_starting(out, key);
    if (key == "Forward MACs per image:") got = got.substr(0, got.find(" ("));
    EXPECT_EQ(got, want) << "in the summary:\n" << out;
  }
}

void expect_quiet_success(const CliResult& r) {
  ASSERT_EQ(r.signal, 0) << describe(r);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "");
}

struct ZooCase {
  std::string label;
  std::vector<std::string> args;      // after `--model`
  std::vector<std::string> expected;  // whole lines (the MACs line without its count)
  bool round_trip;                    // also export it and summarise the file (slow ones: no)
};

std::ostream& operator<<(std::ostream& os, const ZooCase& c) { return os << c.label; }

class ZooSummaryTest : public ::testing::TestWithParam<ZooCase> {};

TEST_P(ZooSummaryTest, PrintsThePublishedTotals) {
  std::vector<std::string> args{"summary", "--model"};
  args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
  const CliResult r = run_cli(args);
  expect_quiet_success(r);
  expect_totals(r.out, GetParam().expected);
  if (!GetParam().round_trip) return;

  // export-model -o FILE, then summary --model FILE: the same model, line for line.
  TempDir dir;
  std::vector<std::string> export_args{"export-model", "--model"};
  export_args.insert(export_args.end(), GetParam().args.begin(), GetParam().args.end());
  export_args.insert(export_args.end(), {"-o", dir / "model.json"});
  const CliResult exported = run_cli(export_args);
  expect_quiet_success(exported);
  EXPECT_EQ(exported.out, "") << "with -o nothing goes to standard output";
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.json"}) << "no .tmp left behind";

  const CliResult reread = run_cli({"summary", "--model", dir / "model.json"});
  expect_quiet_success(reread);
  expect_totals(reread.out, GetParam().expected);
  EXPECT_EQ(reread.out, r.out);
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, ZooSummaryTest,
    ::testing::Values(
        ZooCase{"resnet18",
                {"resnet18"},
                {"Trainable params: 11,689,512", "Forward MACs per image: 1.814 GMACs"},
                true},
        ZooCase{"resnet34",
                {"resnet34"},
                {"Trainable params: 21,797,672", "Forward MACs per image: 3.664 GMACs"},
                false},
        ZooCase{"resnet50",
                {"resnet50"},
                {"Trainable params: 25,557,032", "Non-trainable params: 53,120",
                 "Forward MACs per image: 4.089 GMACs"},
                true},
        ZooCase{"resnet101", {"resnet101"}, {"Trainable params: 44,549,160"}, false},
        ZooCase{"resnet152", {"resnet152"}, {"Trainable params: 60,192,808"}, false},
        ZooCase{"resnet50_v1", {"resnet50-v1"}, {"Total params: 25,636,712"}, false},
        ZooCase{"resnet50_v1_6_classes_64px",
                {"resnet50-v1", "--classes", "6", "--input", "3x64x64"},
                {"Total params: 23,600,006"},
                true},
        ZooCase{"resnet20", {"resnet20"}, {"Trainable params: 269,722"}, true}),
    [](const ::testing::TestParamInfo<ZooCase>& p) { return p.param.label; });

TEST(CliSummaryTest, ModelFileWithClassesAndInputOverrides) {
  const std::string tiny = source_dir() / "models" / "tiny-cnn.json";
  const CliResult plain = run_cli({"summary", "--model", tiny});
  expect_quiet_success(plain);
  // conv 8x1x3x3 = 72, BN 8 + 8 (+ 16 buffers), Dense 8*14*14 -> 10: 15,690.
  expect_totals(plain.out, {"Total params: 15,794", "Trainable params: 15,778",
                            "Non-trainable params: 16"});
  EXPECT_NE(plain.out.find("(None, 28, 28, 1)"), std::string::npos) << plain.out;

  // 14x14 input, 3 classes: Dense 8*7*7 -> 3 = 1,179.
  const CliResult r = run_cli({"summary", "--model", tiny, "--classes", "3", "--input", "1x14x14"});
  expect_quiet_success(r);
  expect_totals(r.out, {"Total params: 1,283", "Trainable params: 1,267"});
  EXPECT_NE(r.out.find("(None, 14, 14, 1)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(None, 3)"), std::string::npos) << r.out;
}

TEST(CliSummaryTest, ResNet50AcceptsA16PixelInputBecauseItsPaddingIsSame) {
  // Every stride-2 layer of resnet50 pads "same", so sizes go 16, 8, 4, 2, 1, 1 and never
  // reach 0 (as in PyTorch and Keras): this must work, not fail as "too small".
  const CliResult r = run_cli({"summary", "--model", "resnet50", "--input", "3x16x16"});
  expect_quiet_success(r);
  EXPECT_NE(line_starting(r.out, "res5c_relu (ReLU)").find("(None, 1, 1, 2048)"),
            std::string::npos)
      << r.out;
  expect_totals(r.out, {"Trainable params: 25,557,032"});
}

TEST(CliExportTest, StandardOutputEqualsTheFileAndIsAModel) {
  TempDir dir;
  const CliResult to_stdout = run_cli({"export-model", "--model", "resnet20"});
  expect_quiet_success(to_stdout);
  const CliResult to_file = run_cli({"export-model", "--model", "resnet20", "-o", dir / "m.json"});
  expect_quiet_success(to_file);
  EXPECT_EQ(read_text(dir / "m.json"), to_stdout.out);

  const nlohmann::json spec = nlohmann::json::parse(to_stdout.out);
  EXPECT_EQ(spec.at("format"), "residual-model");
  EXPECT_EQ(spec.at("version"), 1);
  EXPECT_EQ(spec.at("name"), "resnet20");
  EXPECT_EQ(spec.at("outputs").size(), 1u);
  EXPECT_FALSE(spec.at("layers").empty());
}

TEST(CliExportTest, ExportingAnExportedFileChangesNothing) {
  // The first export fills every default in; from then on the file is a fixed point.
  TempDir dir;
  const std::string tiny = source_dir() / "models" / "tiny-cnn.json";
  expect_quiet_success(run_cli({"export-model", "--model", tiny, "-o", dir / "once.json"}));
  expect_quiet_success(
      run_cli({"export-model", "--model", dir / "once.json", "-o", dir / "twice.json"}));
  const std::string once = read_text(dir / "once.json");
  EXPECT_EQ(once, read_text(dir / "twice.json"));
  const nlohmann::json conv = nlohmann::json::parse(once).at("layers").at(1);
  EXPECT_EQ(conv.at("name"), "conv1");
  EXPECT_EQ(conv.at("config").at("strides"), 1) << "defaults are written out: " << conv.dump();
  EXPECT_EQ(conv.at("config").at("activation"), "linear") << conv.dump();
}

TEST(CliExportTest, OverwritesAnExistingFile) {
  TempDir dir;
  write_text(dir / "m.json", "old contents");
  expect_quiet_success(run_cli({"export-model", "--model", "resnet20", "-o", dir / "m.json"}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.json"});
  const nlohmann::json spec = nlohmann::json::parse(read_text(dir / "m.json"));
  EXPECT_EQ(spec.at("name"), "resnet20");
}

}  // namespace
}  // namespace residual::cli_test
