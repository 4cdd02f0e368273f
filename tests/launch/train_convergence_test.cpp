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
// epochs, must reach the fp32 held-out accuracy within 0.2 points (4 of the 1,990
// held-out digits) on the mean over seeds 0, 1 and 2. One seed is not enough: a 4-epoch
// result moves by up to 0.4 points from seed to seed in either precision, more than the
// tolerance, so a single pair passes or fails by chance; the mean of three halves that.
// Measured on a Sapphire Rapids Xeon (AMX), bf16 activations and gradients between
// layers: fp32 0.9739 / 0.9754 / 0.9779 (mean 0.9757), bf16 0.9734 / 0.9754 / 0.9769
// (mean 0.9752). About 110 s in fp32 and 45 s in bf16 on 2 cores. Skips on CPUs without
// native bf16, where --precision bf16 is refused.
TEST(TrainConvergenceTest, Resnet20InBf16MatchesFp32OnMnist) {
  if (!bf16_refusal().empty()) GTEST_SKIP() << "refused here: " << bf16_refusal();
  double mean_top1[2] = {0, 0};
  std::string runs;
  const char* precisions[2] = {"fp32", "bf16"};
  for (int p = 0; p < 2; ++p) {
    for (const char* seed : {"0", "1", "2"}) {
      const std::vector<MetricsRow> rows = train_and_read(
          {"--model", "resnet20", "--data", mnist_data(), "--epochs", "4", "--batch-size",
           "128", "--lr", "0.1", "--lr-schedule", "cosine", "--warmup-epochs", "1",
           "--weight-decay", "5e-4", "--threads", "2", "--seed", seed, "--precision",
           precisions[p]},
          4);
      ASSERT_EQ(rows.size(), 4u) << precisions[p] << " seed " << seed;
      const double top1 = rows[3].at("val_top1");
      mean_top1[p] += top1 / 3;
      runs += std::string(" ") + precisions[p] + "/" + seed + " " + std::to_string(top1);
    }
  }
  EXPECT_GT(mean_top1[0], 0.96) << runs;
  EXPECT_NEAR(mean_top1[1], mean_top1[0], 0.002) << "mean fp32 " << mean_top1[0] << ", bf16 "
                                                  << mean_top1[1] << ";" << runs;
}

}  // namespace
}  // namespace residual::cli_test
