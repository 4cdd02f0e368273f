// Data-parallel training end to end: `mpirun -np K residual train` must train the model one
// process trains with the same global batch (equivalence), resume exactly, and end cleanly
// on every failure (a killed, stopped or signalled rank, ranks started differently).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "io/checkpoint.h"
#include "tests/distributed/mpi_job.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

// ResNet-20 on 12x12 synthetic images, global batch 32 (16+16 on 2 ranks, 10+11+11 on
// 3), a checkpoint after every step.
std::vector<std::string> run_args(const fs::path& dir, const std::string& epochs = "1") {
  return {"--model", "resnet20", "--data", "synthetic:1x12x12:4", "--batch-size", "32",
          "--epochs", epochs, "--seed", "7", "--lr", "0.02", "--threads", "1",
          "--checkpoint-dir", dir.string(), "--checkpoint-every-steps", "1", "--keep-last", "100"};
}

std::string checkpoint_at(const fs::path& dir, int64_t step) {
  for (const CheckpointName& c : checkpoints_in(dir)) {
    if (c.step == step) return (dir / c.file).string();
  }
  return "";
}

// max over the trainable tensors of max|a - b| / max|b|: the strictest measure.
double max_relative_difference(const std::string& a_file, const std::string& b_file) {
  const Checkpoint a = read_checkpoint(a_file), b = read_checkpoint(b_file);
  double worst = 0;
  for (const auto& [name, tb] : b.parameters) {
    const Tensor& ta = a.parameters.at(name);
    double diff = 0, scale = 1e-30;
    for (int64_t i = 0; i < tb.numel(); ++i) {
      diff = std::max(diff, static_cast<double>(std::fabs(ta.f32()[i] - tb.f32()[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(tb.f32()[i])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

// ||a - b|| / ||b|| over all trainable parameters together.
double relative_l2_difference(const std::string& a_file, const std::string& b_file) {
  const Checkpoint a = read_checkpoint(a_file), b = read_checkpoint(b_file);
  double diff = 0, norm = 0;
  for (const auto& [name, tb] : b.parameters) {
    const Tensor& ta = a.parameters.at(name);
    for (int64_t i = 0; i < tb.numel(); ++i) {
      const double d = static_cast<double>(ta.f32()[i]) - tb.f32()[i];
      diff += d * d;
      norm += static_cast<double>(tb.f32()[i]) * tb.f32()[i];
    }
  }
  return std::sqrt(diff / norm);
}

void expect_success(const JobResult& r) {
  ASSERT_FALSE(r.timed_out) << r.err;
  ASSERT_EQ(r.exit_code, 0) << describe(r) << "\n" << r.err << r.out;
}

// One process, batch 32, plain (fused) batch norm: the reference every run compares to,
// with 1 thread and with 2 (oneDNN then sums in another order: the float32 noise floor).
const fs::path& reference_dir(const std::string& threads = "1") {
  static std::map<std::string, std::unique_ptr<TempDir>> dirs;
  auto& dir = dirs[threads];
  if (!dir) {
    dir = std::make_unique<TempDir>();
    std::vector<std::string> args = run_args(dir->path());
    args[std::find(args.begin(), args.end(), "--threads") - args.begin() + 1] = threads;
    const CliResult r = run_cli(train_args(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return dir->path();
}

class Equivalence : public ::testing::TestWithParam<int> {};

// Tolerances. After 1 step the only differences are float32 summation orders (the
// gradient sum over ranks; batch-norm sums in double instead of float): 1e-5 relative in
// every tensor, and 1e-5 in the L2 norm of all parameters after 3 steps. Training on noise
// then amplifies any rounding difference: one process with 2 threads instead of 1 (oneDNN's
// own summation order) drifts to ~1e-3 (L2) by step 20, so after 20 steps k ranks must stay
// within 4x that floor, measured in the same test. A rank's dropped gradient or uneven
// shares averaged by world size are ~1e-2 or more after the first step.
constexpr double kAmplifiedRoundingAfter20 = 0.0061;

TEST_P(Equivalence, SyncBatchNormRanksReproduceOneProcess) {
  const int ranks = GetParam();
  TempDir dir;
  std::vector<std::string> args = run_args(dir.path());
  args.push_back("--sync-bn");
  expect_success(run_mpi_train(ranks, args));
  auto at = [](const fs::path& run_dir, int64_t step) { return checkpoint_at(run_dir, step); };
  const double after1 = max_relative_difference(at(dir.path(), 1), at(reference_dir(), 1));
  const double after3 = relative_l2_difference(at(dir.path(), 3), at(reference_dir(), 3));
  const double after20 = relative_l2_difference(at(dir.path(), 20), at(reference_dir(), 20));
  const double floor20 = relative_l2_difference(at(reference_dir("2"), 20), at(reference_dir(), 20));
  std::printf("%d ranks vs one process: max relative difference %.3g after 1 step; relative L2 "
              "%.3g after 3, %.3g after 20 (1 vs 2 threads in one process: %.3g)\n",
              ranks, after1, after3, after20, floor20);
  EXPECT_LT(after1, 1e-5);
  EXPECT_LT(after3, 1e-5);
  // Where the thread count changes no summation order (oneDNN's AVX2 kernels here on
  // 2026-12-02 gave a floor of exactly 0) the floor is the one measured on AVX-512
  // machines, where 2 and 3 ranks drift as far as 1 vs 2 threads: 0.0061 by step 20.
  EXPECT_LT(after20, 4 * std::max(floor20, kAmplifiedRoundingAfter20));
}

INSTANTIATE_TEST_SUITE_P(Ranks, Equivalence, ::testing::Values(2, 3));

// bf16 mixed precision keeps the equivalence: each sample's bf16 products are the same
// whichever rank computes them, so after one step k ranks differ from one process only by
// fp32 summation orders (weight gradients summed over other shares of the batch), and
// the fp32 bounds hold. Measured (2 ranks, AMX): 1.6e-7 after 1 step, 6e-9 in L2 after 3.
// Skips where bf16 is refused.
TEST(MpiTrain, Bf16RanksReproduceOneProcess) {
  if (!bf16_refusal().empty()) GTEST_SKIP() << "refused here: " << bf16_refusal();
  TempDir one, two;
  std::vector<std::string> args = run_args(one.path(), "1");
  args.insert(args.end(), {"--precision", "bf16", "--sync-bn"});
  const CliResult r = run_cli(train_args(args));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> ranked = run_args(two.path(), "1");
  ranked.insert(ranked.end(), {"--precision", "bf16", "--sync-bn"});
  expect_success(run_mpi_train(2, ranked));
  const double after1 = max_relative_difference(checkpoint_at(two.path(), 1),
                                                checkpoint_at(one.path(), 1));
  const double after3 = relative_l2_difference(checkpoint_at(two.path(), 3),
                                               checkpoint_at(one.path(), 3));
  std::printf("bf16, 2 ranks vs one process: max relative difference %.3g after 1 step, "
              "relative L2 %.3g after 3\n", after1, after3);
  EXPECT_LT(after1, 1e-5);
  EXPECT_LT(after3, 1e-5);
}

// A global batch of 2 over 3 ranks: one rank has no sample in every step, yet takes part
// in every collective, and the step is still one process's step.
TEST(MpiTrain, ARankWithoutSamplesInAStepStillReproducesOneProcess) {
  TempDir one, three;
  auto args = [](const fs::path& dir) {
    std::vector<std::string> a = run_args(dir);
    a[std::find(a.begin(), a.end(), "--batch-size") - a.begin() + 1] = "2";
    a.insert(a.end(), {"--synthetic-size", "6"});  // three steps
    return a;
  };
  std::vector<std::string> a = args(one.path());  // one process, fused batch norm
  std::vector<std::string> b = args(three.path());
  b.push_back("--sync-bn");
  ASSERT_EQ(run_cli(train_args(a)).exit_code, 0);
  expect_success(run_mpi_train(3, b));
  for (int64_t step : {1, 3}) {
    const double d = max_relative_difference(checkpoint_at(three.path(), step), checkpoint_at(one.path(), step));
    std::printf("global batch 2 on 3 ranks vs one process: max relative difference %.3g after %lld steps\n",
                d, static_cast<long long>(step));
    EXPECT_LT(d, 1e-5);
  }
}

// The same seed, world size and threads give bit-identical runs.
TEST(MpiTrain, SameSeedAndWorldAreBitIdentical) {
  TempDir a, b;
  expect_success(run_mpi_train(3, run_args(a.path(), "1")));
  expect_success(run_mpi_train(3, run_args(b.path(), "1")));
  expect_same_state(checkpoint_at(a.path(), 32), checkpoint_at(b.path(), 32));
}

// Resumed under mpirun from a mid-epoch checkpoint: the same as never stopping. And a
// 2-rank checkpoint resumed on 3 ranks continues the same data order and global batch.
TEST(MpiTrain, ResumeEqualsAnUninterruptedRunAndMayChangeTheWorldSize) {
  TempDir full, part;
  std::vector<std::string> args = run_args(full.path(), "2");
  args.push_back("--sync-bn");
  expect_success(run_mpi_train(2, args));
  std::vector<std::string> first = run_args(part.path(), "2");
  first.push_back("--sync-bn");
  expect_success(run_mpi_train(2, first));
  // Keep only what an interruption at step 40 would have left.
  for (const CheckpointName& c : checkpoints_in(part.path())) {
    if (c.step > 40) fs::remove(part.path() / c.file);
  }
  write_text(part.path() / "latest", fs::path(checkpoint_at(part.path(), 40)).filename().string() + "\n");
  expect_success(run_mpi_train(2, {"--resume", part.path().string(), "--threads", "1"}));
  expect_same_state(checkpoint_at(full.path(), 64), checkpoint_at(part.path(), 64));

  TempDir three;
  fs::copy_file(checkpoint_at(part.path(), 40), three.path() / fs::path(checkpoint_at(part.path(), 40)).filename());
  write_text(three.path() / "latest", fs::path(checkpoint_at(part.path(), 40)).filename().string() + "\n");
  expect_success(run_mpi_train(3, {"--resume", three.path().string(), "--threads", "1"}));
  const double drift = max_relative_difference(checkpoint_at(three.path(), 64), checkpoint_at(full.path(), 64));
  std::printf("2 ranks resumed on 3: max relative difference %.3g at step 64\n", drift);
  // 24 steps amplify the rounding of another summation order to ~2e-3 (0.00203 on an
  // AVX2 machine, 2026-12-02); leaving the data order or the global batch goes far past.
  EXPECT_LT(drift, 5e-3) << "the 3-rank continuation left the 2-rank trajectory";
  const Checkpoint c = read_checkpoint(checkpoint_at(three.path(), 64));
  EXPECT_EQ(c.world_size, 3);
  EXPECT_EQ(c.global_batch_size, 32);
}

// models/mnist-cnn.json: no batch norm, two Dropout layers. Its masks follow the sample's
// place in the global batch, so 3 ranks draw one process's masks; micro-batches
// (--accumulate) add up to the same step as well.
std::vector<std::string> cnn_args(const fs::path& dir) {
  return {"--model", (source_dir() / "models" / "mnist-cnn.json").string(), "--data",
          "synthetic:1x28x28:10", "--synthetic-size", "96", "--batch-size", "32", "--epochs", "1",
          "--seed", "3", "--lr", "0.05", "--threads", "1", "--checkpoint-dir", dir.string(),
          "--checkpoint-every-steps", "1", "--keep-last", "10"};
}

TEST(MpiTrain, DropoutAndAccumulationReproduceOneProcess) {
  TempDir one, three, micro, both;
  ASSERT_EQ(run_cli(train_args(cnn_args(one.path()))).exit_code, 0);
  expect_success(run_mpi_train(3, cnn_args(three.path())));
  std::vector<std::string> m = cnn_args(micro.path());
  m.insert(m.end(), {"--accumulate", "4"});
  ASSERT_EQ(run_cli(train_args(m)).exit_code, 0);
  std::vector<std::string> b = cnn_args(both.path());
  b.insert(b.end(), {"--accumulate", "2"});
  expect_success(run_mpi_train(2, b));
  for (const auto& [label, dir] : {std::pair<const char*, fs::path>{"3 ranks", three.path()},
                                   {"--accumulate 4", micro.path()},
                                   {"2 ranks, --accumulate 2", both.path()}}) {
    const double after1 = max_relative_difference(checkpoint_at(dir, 1), checkpoint_at(one.path(), 1));
    const double after3 = relative_l2_difference(checkpoint_at(dir, 3), checkpoint_at(one.path(), 3));
    std::printf("mnist-cnn (dropout), %s vs one process: max relative difference %.3g after 1 step, "
                "relative L2 %.3g after 3\n", label, after1, after3);
    EXPECT_LT(after1, 1e-5) << label;
    EXPECT_LT(after3, 1e-4) << label;
  }
}

TEST(MpiTrain, BatchNormGroupsMustDivideTheWorld) {
  TempDir dir;
  std::vector<std::string> args = run_args(dir.path());
  args.insert(args.end(), {"--sync-bn", "--sync-bn-group-size", "2"});
  const JobResult r = run_mpi_train(3, args, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--sync-bn-group-size 2 does not divide the world size 3"), std::string::npos) << r.err;
}

// Groups of one rank: each rank's own statistics through the synchronized path, which must
// equal the plain per-rank batch norm.
TEST(MpiTrain, BatchNormGroupsOfOneRankEqualPerRankStatistics) {
  TempDir plain, grouped;
  expect_success(run_mpi_train(2, run_args(plain.path())));
  std::vector<std::string> g = run_args(grouped.path());
  g.insert(g.end(), {"--sync-bn", "--sync-bn-group-size", "1"});
  expect_success(run_mpi_train(2, g));
  const double d = max_relative_difference(checkpoint_at(grouped.path(), 1), checkpoint_at(plain.path(), 1));
  EXPECT_LT(d, 1e-5);
}

TEST(MpiTrain, RanksStartedWithDifferentOptionsFailAtStartUp) {
  TempDir dir;
  std::vector<std::string> command = mpirun_args(1);
  std::vector<std::string> common = {cli_path(), "train", "--model", "resnet20", "--data",
                                     "synthetic:1x12x12:4", "--epochs", "1", "--no-progress"};
  command.insert(command.end(), common.begin(), common.end());
  command.insert(command.end(), {"--lr", "0.1", ":", "-np", "1"});
  command.insert(command.end(), common.begin(), common.end());
  command.insert(command.end(), {"--lr", "0.05"});
  const JobResult r = run_job(command, 60);
  ASSERT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1 has lr = 0.05"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rank 0 has 0.1"), std::string::npos) << r.err;
}

// Every held-out sample counts once on any number of ranks (no padding duplicates).
TEST(MpiTrain, HeldOutEvaluationCountsEverySampleOnce) {
  TempDir one, three;
  std::vector<std::string> a = run_args(one.path());
  a.insert(a.end(), {"--sync-bn", "--metrics-file", (one.path() / "m.csv").string()});
  a[std::find(a.begin(), a.end(), "--batch-size") - a.begin() + 1] = "100";
  // A negligible rate: both runs evaluate (nearly) the initial model, so a sample counted
  // twice or missed shows, not a near-tie prediction flipped by rounding.
  a[std::find(a.begin(), a.end(), "--lr") - a.begin() + 1] = "1e-7";
  std::vector<std::string> b = run_args(three.path());
  b.insert(b.end(), {"--sync-bn", "--metrics-file", (three.path() / "m.csv").string()});
  b[std::find(b.begin(), b.end(), "--batch-size") - b.begin() + 1] = "100";
  b[std::find(b.begin(), b.end(), "--lr") - b.begin() + 1] = "1e-7";
  expect_success(run_mpi_train(1, a));
  expect_success(run_mpi_train(3, b));
  const auto ma = read_metrics_csv(one.path() / "m.csv"), mb = read_metrics_csv(three.path() / "m.csv");
  ASSERT_EQ(ma.size(), 1u);
  ASSERT_EQ(mb.size(), 1u);
  // 1024 held-out images over batches of 100 (the last one 24: 8 per rank).
  EXPECT_NEAR(ma[0].at("val_top1"), mb[0].at("val_top1"), 0.5 / 1024);
  EXPECT_NEAR(ma[0].at("val_loss"), mb[0].at("val_loss"), 1e-5);
}

}  // namespace
}  // namespace residual::cli_test
