// `residual train` given checkpoints it cannot use: --init-from into a model of another
// shape, --resume of a missing, empty or truncated checkpoint, --resume with an option that
// would change the run. Each is one "residual: error:" line and a non-zero exit, and a
// failed resume leaves the checkpoint directory exactly as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/launch/cli_expect.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

// One line on stderr, "residual: error: ...", containing every needle; no training done.
void expect_refused_before_training(const CliResult& r, const std::vector<std::string>& needles) {
  expect_error(r, needles, Output::kAllowed);
  EXPECT_EQ(r.out.find("epoch "), std::string::npos) << "it trained anyway:\n" << r.out;
}

// One epoch of the small configuration (4 classes) with its checkpoints in `dir`.
void make_run(const fs::path& dir) {
  std::vector<std::string> args = small_run_args("1");
  args.insert(args.end(), {"--epochs", "1", "--checkpoint-dir", dir.string()});
  const CliResult r = run_cli(train_args(args));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_EQ(latest_name(dir), "ckpt-e0001-s000000032.h5");
}

// The small configuration on 7-class data: resnet20 then ends in a 7-way fc layer, where
// the checkpoint of make_run has a 4-way one.
std::vector<std::string> seven_class_args(const std::string& checkpoint) {
  return train_args({"--model", "resnet20", "--data", "synthetic:1x12x12:7", "--classes", "7",
                     "--batch-size", "32", "--threads", "2", "--epochs", "1", "--init-from",
                     checkpoint});
}

class TrainCheckpointErrorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(make_run(dir_)); }
  std::string checkpoint() const { return (dir_ / latest_name(dir_)).string(); }

  TempDir tmp_;
  const fs::path dir_ = tmp_ / "run";
};

TEST_F(TrainCheckpointErrorTest, StrictInitFromListsEveryMismatchWithBothShapes) {
  expect_refused_before_training(
      run_cli(seven_class_args(checkpoint())),
      {checkpoint(), "fc/kernel", "7x64", "4x64", "fc/bias", "--non-strict"});
}

TEST_F(TrainCheckpointErrorTest, NonStrictInitFromLoadsTheRestAndSaysWhatItSkipped) {
  std::vector<std::string> args = seven_class_args(checkpoint());
  args.push_back("--non-strict");
  const CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // resnet20 has 97 tensors (parameters and BN statistics); only the fc pair is skipped.
  EXPECT_NE(r.out.find("loaded 95 tensors from " + checkpoint() + ", skipped 2:"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  shape of fc/kernel: model 7x64, checkpoint 4x64\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  shape of fc/bias: model 7, checkpoint 4\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 1/1"), std::string::npos) << r.out;
}

TEST_F(TrainCheckpointErrorTest, ResumeOfANonexistentPath) {
  const std::string before = describe_listing(dir_);
  const std::string missing = (tmp_ / "no-such-run").string();
  expect_refused_before_training(run_cli(train_args({"--resume", missing, "--epochs", "2",
                                                     "--checkpoint-dir", dir_.string()})),
                                 {missing, "does not exist"});
  EXPECT_EQ(describe_listing(dir_), before);
  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(TrainCheckpointErrorTest, ResumeOfADirectoryWithoutCheckpoints) {
  const fs::path empty = tmp_ / "empty";
  fs::create_directory(empty);
  write_text(empty / "notes.txt", "not a checkpoint\n");
  const std::string before = describe_listing(empty);
  expect_refused_before_training(run_cli(train_args({"--resume", empty.string(), "--epochs", "2",
                                                     "--checkpoint-dir", empty.string()})),
                                 {empty.string(), "latest"});
  EXPECT_EQ(describe_listing(empty), before);
}

TEST_F(TrainCheckpointErrorTest, ResumeOfATruncatedFile) {
  const std::string good = checkpoint();
  const std::string text = read_text(good);
  // Cut inside the superblock, in the middle, and one byte short of the end.
  for (const size_t size : {size_t{100}, text.size() / 2, text.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(size) + " of " + std::to_string(text.size()));
    const fs::path cut = tmp_ / "cut.h5";
    write_text(cut, text.substr(0, size));
    const std::string before = describe_listing(dir_);
    expect_refused_before_training(run_cli(train_args({"--resume", cut.string(), "--epochs", "2",
                                                       "--checkpoint-dir", dir_.string()})),
                                   {cut.string()});
    EXPECT_EQ(describe_listing(dir_), before);
  }
}

TEST_F(TrainCheckpointErrorTest, ResumeOfADirectoryWhoseLatestIsTruncated) {
  // As a crash of a writer without atomic renames would leave it: latest names a torn file.
  const std::string text = read_text(checkpoint());
  write_text(dir_ / "ckpt-e0002-s000000064.h5", text.substr(0, text.size() / 2));
  write_text(dir_ / "latest", "ckpt-e0002-s000000064.h5\n");
  const std::string before = describe_listing(dir_);
  expect_refused_before_training(run_cli(train_args({"--resume", dir_.string(), "--epochs", "3",
                                                     "--checkpoint-dir", dir_.string()})),
                                 {(dir_ / "ckpt-e0002-s000000064.h5").string()});
  EXPECT_EQ(describe_listing(dir_), before);
}

TEST_F(TrainCheckpointErrorTest, ResumeRefusesOptionsThatWouldChangeTheRun) {
  const std::string before = describe_listing(dir_);
  const std::vector<std::vector<std::string>> changes = {{"--lr", "0.5"},
                                                         {"--seed", "2"},
                                                         {"--batch-size", "16"},
                                                         {"--data", "synthetic:1x12x12:5"},
                                                         {"--optimizer", "adam"}};
  for (const auto& change : changes) {
    SCOPED_TRACE(change[0]);
    std::vector<std::string> args = {"--resume", dir_.string(),      "--epochs",
                                     "2",        "--checkpoint-dir", dir_.string()};
    args.insert(args.end(), change.begin(), change.end());
    expect_refused_before_training(run_cli(train_args(args)),
                                   {change[0], "cannot be changed when resuming"});
  }
  EXPECT_EQ(describe_listing(dir_), before);
}

}  // namespace
}  // namespace residual::cli_test
