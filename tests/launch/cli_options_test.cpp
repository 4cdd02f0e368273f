// Numeric options of every subcommand are checked against the range where they mean
// something, before any work starts (issue 8): the parse error names the option, the
// value and the range.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/launch/cli_expect.h"
#include "tests/launch/cli_runner.h"

namespace residual::cli_test {
namespace {

// A command that would run quickly if the option under test were accepted.
std::vector<std::string> base_command(const std::string& command) {
  if (command == "train") {
    return {"train",        "--model", tiny_cnn_model(), "--data", "synthetic:1x28x28:10",
            "--no-progress"};
  }
  if (command == "bench") return {"bench", "--model", tiny_cnn_model(), "--batch-size", "2"};
  if (command == "eval") return {"eval", "--checkpoint", "no-such-checkpoint"};
  if (command == "predict") return {"predict", "--checkpoint", "no-such-checkpoint", "-o", "p.csv"};
  return {command, "--model", "resnet20"};  // summary, export-model
}

struct RangeCase {
  std::vector<std::string> commands;
  std::string option;
  std::vector<std::string> bad_values;
  std::string range;  // as the message shows it
};

const std::vector<RangeCase>& range_cases() {
  static const std::vector<RangeCase> cases = {
      {{"train", "bench", "eval", "predict"},
       "--threads",
       {"0", "-1", "100000", "1.5"},
       "[1, 1024]"},
      {{"train", "bench", "eval", "predict"},
       "--batch-size",
       {"0", "-4", "65537", "2.5", "99999999999999999999"},
       "[1, 65536]"},
      {{"train", "bench", "summary", "export-model"},
       "--classes",
       {"0", "100001", "x"},
       "[1, 100000]"},
      {{"train"}, "--epochs", {"0", "1e3", "1000001"}, "[1, 1000000]"},
      {{"train"}, "--workers", {"0", "257"}, "[1, 256]"},
      {{"train"}, "--crop-padding", {"-2", "257"}, "[-1, 256]"},
      {{"train"}, "--lr", {"0", "-1", "inf", "nan", "101", "1e400"}, "(0, 100]"},
      {{"train"}, "--momentum", {"-0.1", "1", "5"}, "[0, 1)"},
      {{"train"}, "--weight-decay", {"-1", "1.5"}, "[0, 1]"},
      {{"train"}, "--beta1", {"1", "-0.5"}, "[0, 1)"},
      {{"train"}, "--beta2", {"1", "2"}, "[0, 1)"},
      {{"train"}, "--adam-epsilon", {"0", "-1", "2"}, "(0, 1]"},
      {{"train"}, "--warmup-epochs", {"-1", "inf", "1000001"}, "[0, 1000000]"},
      {{"train"}, "--lr-step-size", {"0", "-1"}, "(0, 1000000]"},
      {{"train"}, "--lr-milestones", {"0", "-5", "10,-5"}, "(0, 1000000]"},
      {{"train"}, "--lr-gamma", {"0", "1.5", "-1"}, "(0, 1]"},
      {{"train"}, "--lr-power", {"0", "-1", "101"}, "(0, 100]"},
      {{"train"}, "--final-lr", {"-1", "101"}, "[0, 100]"},
      {{"train"}, "--label-smoothing", {"1", "-0.1"}, "[0, 1)"},
      {{"train"}, "--clip-grad-norm", {"-1", "inf"}, "[0, 1000000]"},
      {{"train"}, "--seed", {"-1", "1.5", "x"}, "[0, 9223372036854775807]"},
      {{"train"}, "--checkpoint-every-epochs", {"-1", "1000001"}, "[0, 1000000]"},
      {{"train"}, "--checkpoint-every-steps", {"-1", "1.5"}, "[0, 1000000000]"},
      {{"train"}, "--keep-last", {"0", "1001"}, "[1, 1000]"},
      {{"train"}, "--log-every", {"-1", "1000000001"}, "[0, 1000000000]"},
      {{"train"}, "--mean", {"nan", "1,inf", "-2000000"}, "[-1000000, 1000000]"},
      {{"train"}, "--std", {"0", "-1", "nan"}, "(0, 1000000]"},
      {{"bench"}, "--steps", {"0", "1000001"}, "[1, 1000000]"},
      {{"bench"}, "--warmup", {"-1", "1000001"}, "[0, 1000000]"},
  };
  return cases;
}

TEST(CliOptionRangeTest, EveryNumericOptionNamesItsRange) {
  for (const RangeCase& c : range_cases()) {
    for (const std::string& command : c.commands) {
      for (const std::string& value : c.bad_values) {
        SCOPED_TRACE(command + " " + c.option + " " + value);
        std::vector<std::string> args = base_command(command);
        args.push_back(c.option);
        args.push_back(value);
        // A list option names the value in it that is out of range.
        const std::string shown = value.substr(value.rfind(',') + 1);
        expect_parse_error(run_cli(args, 20), {c.option, "'" + shown + "'", c.range});
      }
    }
  }
}

TEST(CliOptionRangeTest, HugeThreadCountIsRefusedBeforeOpenMpStarts) {
  // 100000 threads crashed inside libgomp (SIGSEGV) when oneDNN started them.
  const CliResult r = run_cli({"bench", "--model", tiny_cnn_model(), "--batch-size", "2", "--steps",
                               "1", "--warmup", "0", "--threads", "100000"},
                              20);
  expect_parse_error(r, {"--threads", "[1, 1024]"});
}

TEST(CliOptionRangeTest, BoundaryValuesAreAccepted) {
  std::vector<std::string> args = base_command("train");
  for (const char* arg : {"--epochs",
                          "1",
                          "--threads",
                          "1",
                          "--batch-size",
                          "256",
                          "--momentum",
                          "0",
                          "--lr-gamma",
                          "1",
                          "--label-smoothing",
                          "0",
                          "--keep-last",
                          "1000",
                          "--seed",
                          "9223372036854775807",
                          "--crop-padding",
                          "-1",
                          "--checkpoint-every-epochs",
                          "0",
                          "--log-every",
                          "0"}) {
    args.push_back(arg);
  }
  const CliResult r = run_cli(args, 60);
  ASSERT_EQ(r.signal, 0) << describe(r);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  const CliResult s = run_cli({"summary", "--model", "resnet20", "--classes", "100000"}, 60);
  EXPECT_EQ(s.exit_code, 0) << describe(s);
}

TEST(CliOptionRangeTest, WarmupMustEndBeforeTheLastEpoch) {
  std::vector<std::string> args = base_command("train");
  for (const char* arg : {"--epochs", "2", "--warmup-epochs", "2", "--threads", "1"}) {
    args.push_back(arg);
  }
  expect_error(run_cli(args, 20), {"--warmup-epochs 2", "--epochs 2"});
}

// ---- image shapes: --input and synthetic data are bounded so sizes cannot overflow ----

TEST(CliInputShapeTest, HugeInputIsRefusedNotOverflowed) {
  // Printed -5159526254.407 GMACs (int64 overflow) with exit 0.
  expect_error(run_cli({"summary", "--model", "resnet20", "--input", "3x1000000000x1000000000"}),
               {"--input", "'3x1000000000x1000000000'", "65536"});
  expect_error(run_cli({"export-model", "--model", "resnet20", "--input", "3x65536x65536"}),
               {"--input", "'3x65536x65536'", "268435456"});
  expect_error(
      run_cli({"bench", "--model", "resnet20", "--input", "3x100000x32", "--threads", "1"}, 20),
      {"--input", "'3x100000x32'", "65536"});
  std::vector<std::string> args = base_command("train");
  args.insert(args.end(), {"--input", "70000x1x1", "--threads", "1"});
  expect_error(run_cli(args, 20), {"--input", "'70000x1x1'", "65536"});
}

TEST(CliInputShapeTest, LargestInputStillSummarises) {
  const CliResult r = run_cli({"summary", "--model", "resnet20", "--input", "1x16384x16384"}, 60);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("GMACs"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(": -"), std::string::npos) << r.out;
}

TEST(CliInputShapeTest, ModelFileInputLayerIsBounded) {
  TempDir dir;
  write_edited_model("tiny-cnn.json", "\"shape\": [28, 28, 1]",
                     "\"shape\": [1000000000, 1000000000, 1]", dir / "huge.json");
  expect_error(run_cli({"summary", "--model", dir / "huge.json"}), {"'input'", "65536"});
}

TEST(CliInputShapeTest, SyntheticDataShapeIsBounded) {
  std::vector<std::string> args = {
      "train",     "--model", "resnet20",     "--data", "synthetic:3x99999999x99999999:10",
      "--threads", "1",       "--no-progress"};
  expect_error(run_cli(args, 20), {"synthetic:3x99999999x99999999:10", "65536"}, Output::kAllowed);
}

}  // namespace
}  // namespace residual::cli_test
