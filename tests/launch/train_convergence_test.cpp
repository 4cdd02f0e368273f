// `residual train` actually learns: short runs on the real digits of data/mnist-10k must
// reach a held-out accuracy that a broken gradient, optimizer, schedule or data pipeline
// cannot. The thresholds sit 5-8 points below the values measured with these seeds and
// thread counts (runs are deterministic), and far above what a crippled run reaches.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

// The held-out top-1 printed on the "epoch N/N ... top1 X" line of the last epoch.
double printed_top1(const std::string& out, int epochs) {
  const std::string tag = "epoch " + std::to_string(epochs) + "/" + std::to_string(epochs);
  for (const std::string& line : lines_of(out)) {
    if (line.rfind(tag, 0) != 0) continue;
    const size_t at = line.find(" top1 ");
    if (at == std::string::npos) break;
    return std::stod(line.substr(at + 6));
  }
  ADD_FAILURE() << "no '" << tag << " ... top1' line in:\n" << out;
  return -1;
}

// Runs training, checks the metrics file against stdout, returns the metrics rows.
std::vector<MetricsRow> train_and_read(std::vector<std::string> args, int epochs) {
  TempDir tmp;
  args.push_back("--metrics-file");
  args.push_back((tmp / "metrics.csv").string());
  const CliResult r = run_cli(train_args(args));
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  if (r.exit_code != 0) return {};
  std::vector<MetricsRow> rows = read_metrics_csv(tmp / "metrics.csv");
  EXPECT_EQ(rows.size(), static_cast<size_t>(epochs));
  if (rows.size() != static_cast<size_t>(epochs)) return {};
  // The two reports of the same number must agree (stdout has 4 decimals).
  EXPECT_NEAR(rows.back().at("val_top1"), printed_top1(r.out, epochs), 0.00006);
  return rows;
}

// A 15k-parameter CNN (conv-BN-ReLU-pool-dense) fits the 8010 training digits in 3 epochs
// (about 1 s). Measured: held-out top-1 0.944, loss 0.186. With --lr 0.0001 it reaches
// 0.75, with --lr 0.00001 0.15; at the default --lr 0.1 it diverges (it has no
// normalisation before its dense layer), hence 0.02.
TEST(TrainConvergenceTest, TinyCnnLearnsMnistDigits) {
  const std::vector<MetricsRow> rows = train_and_read(
      {"--model", (source_dir() / "models" / "tiny-cnn.json").string(), "--data", mnist_data(),
       "--epochs", "3", "--batch-size", "64", "--lr", "0.02", "--threads", "2", "--seed", "0"},
      3);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_GT(rows[2].at("val_top1"), 0.88);
  EXPECT_LT(rows[2].at("val_loss"), 0.4);
  // Training loss falls epoch over epoch (from ~0.80 through ~0.36 to ~0.30).
  EXPECT_LT(rows[1].at("train_loss"), rows[0].at("train_loss"));
  EXPECT_LT(rows[2].at("train_loss"), rows[1].at("train_loss"));
}

// resnet20 with the defaults (batch 128, SGD lr 0.1 momentum 0.9, cosine) for one epoch
// (about 10 s on 2 cores). Measured: held-out top-1 0.925, top-5 0.991.
TEST(TrainConvergenceTest, Resnet20ReachesGoodAccuracyOnMnistInOneEpoch) {
  const std::vector<MetricsRow> rows = train_and_read(
      {"--model", "resnet20", "--data", mnist_data(), "--epochs", "1", "--threads", "2"}, 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_GT(rows[0].at("val_top1"), 0.85);
  EXPECT_GT(rows[0].at("val_top5"), 0.97);
}

// The bf16 mixed-precision path learns as fp32 does: the demo recipe (scripts/demo: SGD
// lr 0.1, cosine with a 1-epoch warmup, weight decay 5e-4, batch 128), shortened to 4
// epochs (about 35 s in fp32 and 25 s in bf16 on 2 cores), must reach the fp32 held-out
// accuracy within 0.2 points (4 of the 1,990 held-out digits). Measured on a Sapphire
// Rapids Xeon (AMX): top-1 0.9739 both, held-out loss 0.0910 fp32 and 0.0874 bf16. Skips
// on CPUs without native bf16, where --precision bf16 is refused. Runs are deterministic,
// but a 4-epoch result is noisy: with --seed 1 and 2 the pairs were 0.9754/0.9714 and
// 0.9779/0.9774 (fp32's own spread over the 3 seeds: 0.40 points), so on another CPU's
// rounding this single-seed check could miss by noise alone; averaging seeds or the full
// 15-epoch recipe (98.79% fp32, 98.59% bf16) would be steadier and slower.
TEST(TrainConvergenceTest, Resnet20InBf16MatchesFp32OnMnist) {
  if (!bf16_refusal().empty()) GTEST_SKIP() << "refused here: " << bf16_refusal();
  std::vector<double> top1;
  for (const char* precision : {"fp32", "bf16"}) {
    const std::vector<MetricsRow> rows = train_and_read(
        {"--model", "resnet20", "--data", mnist_data(), "--epochs", "4", "--batch-size", "128",
         "--lr", "0.1", "--lr-schedule", "cosine", "--warmup-epochs", "1", "--weight-decay",
         "5e-4", "--threads", "2", "--precision", precision},
        4);
    ASSERT_EQ(rows.size(), 4u) << precision;
    top1.push_back(rows[3].at("val_top1"));
  }
  EXPECT_GT(top1[0], 0.96);
  EXPECT_NEAR(top1[1], top1[0], 0.002) << "fp32 " << top1[0] << ", bf16 " << top1[1];
}

}  // namespace
}  // namespace residual::cli_test
