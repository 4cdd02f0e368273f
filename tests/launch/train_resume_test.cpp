// `residual train` end to end: the same seed and thread count reproduce a run bit for bit,
// and --resume continues a run exactly, from an epoch boundary or from the middle of an
// epoch, so that the final weights, buffers, optimizer state and metrics file are those of
// an uninterrupted run.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Runs `residual train args...` and asserts it succeeded.
void train_ok(const std::vector<std::string>& args) {
  const CliResult r = run_cli(train_args(args));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
}

// One reference run shared by the tests of this suite (each run costs about a second):
// 3 epochs of the small configuration, seed 1, a cosine from 0.1, a checkpoint every epoch
// and every 16 steps (so two per epoch, one of them mid-epoch), all kept.
class TrainRunTest : public ::testing::Test {
 protected:
  static std::vector<std::string> reference_args(const std::filesystem::path& dir,
                                                 const std::filesystem::path& metrics,
                                                 const std::string& seed = "1") {
    return concat(small_run_args(seed),
                  {"--epochs", "3", "--lr-schedule", "cosine", "--lr", "0.1", "--checkpoint-dir",
                   dir.string(), "--checkpoint-every-steps", "16", "--keep-last", "20",
                   "--metrics-file", metrics.string()});
  }
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    ASSERT_NO_FATAL_FAILURE(train_ok(reference_args(ref_dir(), ref_metrics())));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path ref_dir() { return *dir_ / "ref"; }
  static std::filesystem::path ref_metrics() { return *dir_ / "ref.csv"; }
  static std::string ref_file(const std::string& name) { return (ref_dir() / name).string(); }
  static std::string ref_final() { return ref_file("ckpt-e0003-s000000096.h5"); }

  TempDir tmp_;

 private:
  static TempDir* dir_;
};

TempDir* TrainRunTest::dir_ = nullptr;

TEST_F(TrainRunTest, ReferenceRunWroteTheExpectedCheckpoints) {
  // The other tests pick files by these names: epoch ends every 32 steps, step checkpoints
  // at 16, 48 and 80 (none at an epoch end, where the epoch checkpoint is written).
  std::vector<std::string> names;
  for (const auto& c : checkpoints_in(ref_dir())) names.push_back(c.file);
  EXPECT_EQ(names,
            (std::vector<std::string>{"ckpt-e0000-s000000016.h5", "ckpt-e0001-s000000032.h5",
                                      "ckpt-e0001-s000000048.h5", "ckpt-e0002-s000000064.h5",
                                      "ckpt-e0002-s000000080.h5", "ckpt-e0003-s000000096.h5"}));
  EXPECT_EQ(latest_name(ref_dir()), "ckpt-e0003-s000000096.h5");
  EXPECT_EQ(read_metrics_csv(ref_metrics()).size(), 3u);
}

TEST_F(TrainRunTest, SameSeedAndThreadsReproduceTheRunBitForBit) {
  const auto dir = tmp_ / "again";
  const auto metrics = tmp_ / "again.csv";
  ASSERT_NO_FATAL_FAILURE(train_ok(reference_args(dir, metrics)));
  EXPECT_EQ(read_text(metrics), read_text(ref_metrics()));
  const auto ours = checkpoints_in(dir);
  ASSERT_EQ(ours.size(), checkpoints_in(ref_dir()).size());
  for (const auto& c : ours) {
    SCOPED_TRACE(c.file);
    expect_same_state(ref_file(c.file), (dir / c.file).string());
  }
}

TEST_F(TrainRunTest, AnotherSeedGivesAnotherRun) {
  const auto dir = tmp_ / "seed2";
  const auto metrics = tmp_ / "seed2.csv";
  ASSERT_NO_FATAL_FAILURE(train_ok(reference_args(dir, metrics, "2")));
  EXPECT_NE(read_text(metrics), read_text(ref_metrics()));
  // Another initialisation and data order: nearly every tensor differs (a handful of
  // never-updated ones, if any, may agree).
  const int differing = count_differing_tensors(ref_final(), (dir / latest_name(dir)).string());
  EXPECT_GT(differing, 100) << "of 156 tensors";
}

// Regression: the trainer once evaluated the schedule without --epochs (a cosine over one
// epoch), so from epoch 2 on every step had learning rate 0. The lr column is the rate of
// each epoch's last step: a cosine from 0.1 to 0 over all 3 epochs.
TEST_F(TrainRunTest, CosineScheduleSpansAllEpochs) {
  const auto rows = read_metrics_csv(ref_metrics());
  ASSERT_EQ(rows.size(), 3u);
  for (int epoch = 1; epoch <= 3; ++epoch) {
    const double progress = (epoch * kStepsPerEpoch - 1.0) / kStepsPerEpoch;  // last step's start
    const double expected = 0.05 * (1 + std::cos(kPi * progress / 3));
    EXPECT_NEAR(rows[epoch - 1].at("lr"), expected, expected * 1e-6) << "epoch " << epoch;
  }
}

TEST_F(TrainRunTest, ResumeAtAnEpochBoundaryIsExact) {
  const auto dir = tmp_ / "resumed";
  const auto metrics = tmp_ / "resumed.csv";
  ASSERT_NO_FATAL_FAILURE(
      train_ok({"--resume", ref_file("ckpt-e0001-s000000032.h5"), "--threads", "2",
                "--checkpoint-dir", dir.string(), "--metrics-file", metrics.string()}));
  EXPECT_EQ(read_text(metrics), read_text(ref_metrics()));
  ASSERT_EQ(latest_name(dir), "ckpt-e0003-s000000096.h5");
  expect_same_state(ref_final(), (dir / "ckpt-e0003-s000000096.h5").string());
  // The saved configuration went on too: step checkpoints at the same steps.
  expect_same_state(ref_file("ckpt-e0002-s000000080.h5"),
                    (dir / "ckpt-e0002-s000000080.h5").string());
}

TEST_F(TrainRunTest, ResumeInTheMiddleOfAnEpochIsExact) {
  // Step 48 is batch 16 of epoch 2: the data order, augmentation and the running sums of
  // the epoch's training metrics must all continue from there.
  const std::string mid = ref_file("ckpt-e0001-s000000048.h5");
  const Checkpoint c = read_checkpoint(mid);
  ASSERT_EQ(c.epoch, 1);
  ASSERT_EQ(c.batch_in_epoch, 16);
  const auto dir = tmp_ / "resumed";
  const auto metrics = tmp_ / "resumed.csv";
  ASSERT_NO_FATAL_FAILURE(train_ok({"--resume", mid, "--threads", "2", "--checkpoint-dir",
                                    dir.string(), "--metrics-file", metrics.string()}));
  EXPECT_EQ(read_text(metrics), read_text(ref_metrics()));
  ASSERT_EQ(latest_name(dir), "ckpt-e0003-s000000096.h5");
  expect_same_state(ref_file("ckpt-e0002-s000000064.h5"),
                    (dir / "ckpt-e0002-s000000064.h5").string());
  expect_same_state(ref_final(), (dir / "ckpt-e0003-s000000096.h5").string());
}

TEST(TrainExtendTest, OneEpochThenResumeToThreeMatchesThreeStraight) {
  // A step schedule does not depend on --epochs (a cosine does: it stretches to the new
  // length), so 1 + 2 epochs must equal 3; the drop at epoch 2 falls in the resumed part.
  const std::vector<std::string> schedule = {"--lr-schedule", "step", "--lr-step-size", "2"};
  TempDir tmp;
  const auto straight = tmp / "straight";
  ASSERT_NO_FATAL_FAILURE(train_ok(concat(concat(small_run_args("3"), schedule),
                                          {"--epochs", "3", "--checkpoint-dir", straight.string(),
                                           "--metrics-file", (tmp / "straight.csv").string()})));
  const auto dir = tmp / "extended";
  const auto metrics = tmp / "extended.csv";
  ASSERT_NO_FATAL_FAILURE(train_ok(concat(
      concat(small_run_args("3"), schedule),
      {"--epochs", "1", "--checkpoint-dir", dir.string(), "--metrics-file", metrics.string()})));
  ASSERT_EQ(read_metrics_csv(metrics).size(), 1u);
  // The same directory and metrics file: the resumed run rewrites the file from the
  // checkpoint's history, then appends its own epochs.
  ASSERT_NO_FATAL_FAILURE(
      train_ok({"--resume", dir.string(), "--epochs", "3", "--threads", "2", "--checkpoint-dir",
                dir.string(), "--metrics-file", metrics.string()}));
  EXPECT_EQ(read_text(metrics), read_text(tmp / "straight.csv"));
  const auto rows = read_metrics_csv(metrics);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_DOUBLE_EQ(rows[2].at("lr"), 0.01);  // after the drop at epoch 2
  ASSERT_EQ(latest_name(dir), "ckpt-e0003-s000000096.h5");
  ASSERT_EQ(latest_name(straight), "ckpt-e0003-s000000096.h5");
  expect_same_state((straight / "ckpt-e0003-s000000096.h5").string(),
                    (dir / "ckpt-e0003-s000000096.h5").string());
}

}  // namespace
}  // namespace residual::cli_test
