// --precision of train, eval, predict and bench: a misspelling is a parse error; bf16 on a
// CPU without native bf16 is one error line before anything is written (tested anywhere by
// capping oneDNN at AVX2 with ONEDNN_MAX_CPU_ISA); a bf16 run saves fp32 checkpoints that
// record the precision, resume in it, and may be resumed, evaluated or used for
// predictions in either precision. The bf16 runs skip with the reason on CPUs without
// native bf16; the accuracy check is in train_convergence_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "tests/launch/cli_expect.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

// The small resnet20 run on 64 synthetic images: 2 steps of 32 per epoch.
std::vector<std::string> bf16_run(const fs::path& dir, const std::string& epochs = "1") {
  return train_args(concat(small_run_args(), {"--synthetic-size", "64", "--epochs", epochs,
                                            "--checkpoint-dir", dir.string(), "--precision",
                                            "bf16"}));
}

#define SKIP_WITHOUT_NATIVE_BF16() \
  if (!bf16_refusal().empty()) GTEST_SKIP() << "refused here: " << bf16_refusal()

TEST(CliPrecision, AMisspelledPrecisionIsAParseErrorOfEveryCommand) {
  const std::vector<std::vector<std::string>> commands = computing_commands();
  for (const auto& command : commands) {
    for (const std::string bad : {"fp16", "BF16", "bfloat16", ""}) {
      SCOPED_TRACE(command[0] + " --precision '" + bad + "'");
      expect_parse_error(run_cli(concat(command, {"--precision", bad})), "--precision");
    }
  }
}

// Every command refuses bf16 on a CPU capped at AVX2 (what an AMD EPYC of these machines
// has): one line naming the option, the instruction set and what bf16 needs, no output
// and no file or directory made.
TEST(CliPrecision, Bf16WithoutNativeSupportIsOneLineAndWritesNothing) {
  SpawnOptions avx2;
  avx2.env = {{"ONEDNN_MAX_CPU_ISA", "AVX2"}};
  TempDir tmp;
  const std::string ck = (tmp / "ck").string();
  const std::vector<std::vector<std::string>> commands = {
      train_args({"--model", tiny_cnn_model(), "--data", "synthetic:1x28x28:10",
                  "--checkpoint-dir", ck, "--metrics-file", ck + "/m.csv", "--precision",
                  "bf16"}),
      {"eval", "--checkpoint", ck, "--precision", "bf16"},
      {"predict", "--checkpoint", ck, "-o", (tmp / "p.csv").string(), "--precision", "bf16"},
      {"bench", "--model", tiny_cnn_model(), "--batch-size", "2", "--precision", "bf16"}};
  for (const auto& command : commands) {
    SCOPED_TRACE(command[0] + " --precision bf16");
    expect_error(run_cli_with(command, avx2),
                 {"--precision bf16: this CPU has no native bf16 arithmetic",
                  "instruction set here: avx2", "AVX512-BF16 or AMX"});
    EXPECT_TRUE(tmp.entries().empty()) << describe_listing(tmp.path());
  }
}

TEST(CliPrecision, BenchSaysWhichPrecisionRan) {
  SKIP_WITHOUT_NATIVE_BF16();
  const CliResult r = run_cli({"bench", "--model", tiny_cnn_model(), "--batch-size", "4",
                               "--steps", "2", "--warmup", "1", "--precision", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find(" precision=bf16 "), std::string::npos) << r.out;
}

// A bf16 run's checkpoints hold fp32 weights and record "precision": "bf16"; resuming
// keeps it unless --precision says otherwise (where bf16 cannot run, the refusal names the
// checkpoint); eval and predict take either precision.
TEST(CliPrecision, Bf16CheckpointsAreFp32AndInterchangeable) {
  SKIP_WITHOUT_NATIVE_BF16();
  TempDir tmp, ck_dir;  // the checkpoints alone in ck_dir, whose entries() list them
  const fs::path ck = ck_dir.path();
  const CliResult trained = run_cli(bf16_run(ck));
  ASSERT_EQ(trained.exit_code, 0) << describe(trained);
  const Checkpoint c = read_checkpoint((ck / latest_name(ck)).string());
  EXPECT_EQ(c.config.value("precision", ""), "bf16") << c.config.dump();
  for (const auto& [name, tensor] : c.parameters) {
    EXPECT_EQ(tensor.dtype(), DType::kFloat32) << name;
  }
  // Where bf16 cannot run (oneDNN capped at AVX2), the resume says where the bf16 came
  // from and writes nothing; with --precision fp32 it continues.
  SpawnOptions avx2;
  avx2.env = {{"ONEDNN_MAX_CPU_ISA", "AVX2"}};
  const std::vector<std::string> before = ck_dir.entries();
  expect_error(run_cli_with(train_args({"--resume", ck.string(), "--epochs", "2"}), avx2),
               {"was trained with --precision bf16", "give --precision fp32"}, Output::kAllowed);
  EXPECT_EQ(ck_dir.entries(), before);
  const CliResult resumed = run_cli_with(
      train_args({"--resume", ck.string(), "--epochs", "2", "--precision", "fp32", "--threads", "2"}),
      avx2);
  ASSERT_EQ(resumed.exit_code, 0) << describe(resumed);
  const Checkpoint r = read_checkpoint((ck / latest_name(ck)).string());
  EXPECT_EQ(r.global_step, 4);
  EXPECT_EQ(r.config.value("precision", ""), "fp32") << r.config.dump();
  for (const std::string precision : {"fp32", "bf16"}) {
    SCOPED_TRACE(precision);
    const CliResult eval = run_cli({"eval", "--checkpoint", ck.string(), "--precision",
                                    precision, "--threads", "2"});
    ASSERT_EQ(eval.exit_code, 0) << describe(eval);
    EXPECT_NE(eval.out.find("top1"), std::string::npos) << eval.out;
    const std::string out = (tmp / ("p-" + precision + ".csv")).string();
    const CliResult predict = run_cli({"predict", "--checkpoint", ck.string(), "-o", out,
                                       "--precision", precision, "--threads", "2"});
    ASSERT_EQ(predict.exit_code, 0) << describe(predict);
  }
}

}  // namespace
}  // namespace residual::cli_test
