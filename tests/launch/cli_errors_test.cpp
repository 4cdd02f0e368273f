// Bad input to the CLI: every mistake ends in a non-zero exit (not a crash) with one line on
// standard error that names what is wrong and where.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/launch/cli_expect.h"
#include "tests/launch/cli_runner.h"

namespace residual::cli_test {
namespace {

std::string data(const std::string& name) { return test_data(name); }

// ---- model files ----

TEST(CliModelFileErrorTest, MalformedJsonNamesFileLineAndColumn) {
  // malformed.json lacks the comma between two layers: line 8, column 5 is the second '{'.
  expect_error(run_cli({"summary", "--model", data("malformed.json")}),
               {"malformed.json", "line 8, column 5"});
}

TEST(CliModelFileErrorTest, EmptyFileIsAParseError) {
  TempDir dir;
  write_text(dir / "empty.json", "");
  expect_error(run_cli({"summary", "--model", dir / "empty.json"}),
               {(dir / "empty.json").string(), "line 1, column 1"});
}

TEST(CliModelFileErrorTest, UnknownLayerTypeListsTheKnownTypes) {
  expect_error(run_cli({"summary", "--model", data("unknown_type.json")}),
               {"'conv1'", "'Convolution2D'", "Conv2D", "Dense", "BatchNormalization"});
}

TEST(CliModelFileErrorTest, MissingInputNamesTheLayerAndTheMissingName) {
  expect_error(run_cli({"summary", "--model", data("missing_input.json")}),
               {"'flat'", "'conv_one'"});
}

TEST(CliModelFileErrorTest, CycleNamesItsLayers) {
  expect_error(run_cli({"summary", "--model", data("cycle.json")}),
               {"cycle", "'relu_a'", "'relu_b'", "'add'"});
}

TEST(CliModelFileErrorTest, AddOfMismatchedShapesNamesBothInputsAndShapes) {
  expect_error(run_cli({"summary", "--model", data("add_mismatch.json")}),
               {"'sum'", "'conv_a'", "8x8x4", "'conv_b'", "8x8x6"});
}

TEST(CliModelFileErrorTest, UnknownConfigKeyIsNamed) {
  TempDir dir;
  write_edited_model("tiny-cnn.json", "\"padding\": \"same\"",
                     "\"padding\": \"same\", \"stride\": 2", dir / "typo.json");
  expect_error(run_cli({"summary", "--model", dir / "typo.json"}), {"'conv1'", "'stride'"});
}

TEST(CliModelFileErrorTest, NewerFormatVersionIsRefused) {
  TempDir dir;
  write_edited_model("tiny-cnn.json", "\"version\": 1", "\"version\": 2", dir / "v2.json");
  expect_error(run_cli({"summary", "--model", dir / "v2.json"}), {"version 2"});
}

TEST(CliModelFileErrorTest, JsonThatIsNotAModel) {
  TempDir dir;
  write_text(dir / "list.json", "[1, 2, 3]\n");
  expect_error(run_cli({"summary", "--model", dir / "list.json"}), {"list.json", "layers"});
}

TEST(CliModelFileErrorTest, DirectoryIsNotAModelFile) {
  TempDir dir;
  expect_error(run_cli({"summary", "--model", dir.path()}), {dir.path().string(), "directory"});
}

// ---- inputs too small for the network ----

TEST(CliInputTooSmallTest, NamesThePoolingLayerWhereTheSizeReachesZero) {
  const std::string tiny = source_dir() / "models" / "tiny-cnn.json";
  expect_error(run_cli({"summary", "--model", tiny, "--input", "1x1x1"}),
               {"'pool1'", "too small", "reaches 0"});
  expect_error(run_cli({"summary", "--model", "mnist-cnn", "--input", "1x4x4"}),
               {"'pool3'", "too small"});
}

TEST(CliInputTooSmallTest, NamesTheConvolutionWhereTheSizeReachesZero) {
  // Two valid 5x5 convolutions: 8 -> 4 -> 0.
  expect_error(run_cli({"summary", "--model", data("valid_conv_too_small.json")}),
               {"'conv2'", "too small", "4x4"});
}

TEST(CliInputTooSmallTest, BenchFailsTheSameWay) {
  const std::string tiny = source_dir() / "models" / "tiny-cnn.json";
  expect_error(run_cli({"bench", "--model", tiny, "--input", "1x1x1", "--steps", "1",
                        "--warmup", "0", "--threads", "1"}),
               {"'pool1'", "too small"});
}

// ---- model names and paths ----

TEST(CliModelNameErrorTest, UnknownModelNameListsTheZoo) {
  expect_error(run_cli({"summary", "--model", "resnet19"}),
               {"'resnet19'", "not a file", "resnet18", "resnet50"});
  expect_error(run_cli({"export-model", "--model", "resnet19"}), {"'resnet19'"});
  expect_error(run_cli({"bench", "--model", "resnet19"}), {"'resnet19'"});
}

TEST(CliModelNameErrorTest, NonexistentFileIsNamed) {
  TempDir dir;
  const std::string path = dir / "no" / "such.json";
  expect_error(run_cli({"summary", "--model", path}), {"'" + path + "'"});
}

// ---- bad command-line values ----

TEST(CliValueErrorTest, BatchSizeMustBeAPositiveInteger) {
  expect_parse_error(run_cli({"bench", "--model", "resnet20", "--batch-size", "0"}),
                     "--batch-size");
  expect_parse_error(run_cli({"bench", "--model", "resnet20", "--batch-size", "abc"}),
                     "--batch-size");
  expect_parse_error(run_cli({"bench", "--model", "resnet20", "--batch-size", "-4"}),
                     "--batch-size");
}

TEST(CliValueErrorTest, StepsWarmupAndThreadsAreChecked) {
  expect_parse_error(run_cli({"bench", "--model", "resnet20", "--steps", "0"}), "--steps");
  expect_parse_error(run_cli({"bench", "--model", "resnet20", "--warmup", "-1"}), "--warmup");
  expect_parse_error(run_cli({"bench", "--model", "resnet20", "--threads", "0"}), "--threads");
}

TEST(CliValueErrorTest, InputMustBeThreePositiveSizes) {
  for (const char* bad : {"3x32", "0x32x32", "3x32x32x", "3x32x32x5", "3xx32", "ax32x32",
                          "3x-32x32", "3x32.5x32"}) {
    SCOPED_TRACE(bad);
    expect_error(run_cli({"summary", "--model", "resnet20", "--input", bad}),
                 {"'" + std::string(bad) + "'", "CxHxW"});
  }
  expect_error(run_cli({"bench", "--model", "resnet20", "--input", "3x32"}), {"'3x32'"});
}

TEST(CliValueErrorTest, ClassesMustBePositive) {
  expect_parse_error(run_cli({"summary", "--model", "resnet20", "--classes", "-1"}), "--classes");
  expect_parse_error(run_cli({"summary", "--model", "resnet20", "--classes", "0"}), "--classes");
  expect_parse_error(run_cli({"export-model", "--model", "resnet20", "--classes", "x"}),
                     "--classes");
}

TEST(CliValueErrorTest, UnknownOptionIsRefused) {
  expect_parse_error(run_cli({"summary", "--model", "resnet20", "--bogus"}), "--bogus");
  // --batch-size belongs to bench only.
  expect_parse_error(run_cli({"summary", "--model", "resnet20", "--batch-size", "8"}),
                     "--batch-size");
}

TEST(CliValueErrorTest, SubcommandAndModelAreRequired) {
  expect_parse_error(run_cli({}), "subcommand");
  // CLI11 reports an unknown subcommand as a missing one.
  expect_parse_error(run_cli({"frobnicate"}), "subcommand");
  expect_parse_error(run_cli({"summary"}), "--model");
  expect_parse_error(run_cli({"export-model"}), "--model");
}

// ---- export-model -o ----

TEST(CliExportErrorTest, IntoANonexistentDirectoryCreatesNothing) {
  TempDir dir;
  const std::string out = dir / "missing" / "model.json";
  expect_error(run_cli({"export-model", "--model", "resnet20", "-o", out}), {"'" + out + "'"});
  EXPECT_TRUE(dir.entries().empty());
}

TEST(CliExportErrorTest, OntoADirectoryLeavesNoTemporaryFile) {
  TempDir dir;
  std::filesystem::create_directory(dir / "taken");
  expect_error(run_cli({"export-model", "--model", "resnet20", "-o", dir / "taken"}),
               {(dir / "taken").string()});
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"taken"});
  EXPECT_TRUE(std::filesystem::is_empty(dir / "taken"));
}

TEST(CliExportErrorTest, BadModelWritesNoFile) {
  TempDir dir;
  expect_error(run_cli({"export-model", "--model", data("cycle.json"), "-o", dir / "out.json"}),
               {"cycle"});
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace residual::cli_test
