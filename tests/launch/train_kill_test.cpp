// Crash safety of checkpointing: `residual train` killed with SIGKILL at random moments
// (while it writes a checkpoint every step) must always leave a directory whose `latest`
// names a complete, loadable checkpoint, and `--resume DIR` must carry on from it.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint.h"
#include "io/checkpoint_store.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

TEST(TrainKillTest, SigkillAtRandomMomentsLeavesALoadableLatestCheckpoint) {
  constexpr int kIterations = 20;
  constexpr int kMinResumes = 5;
  // One thread: a step is then cheaper (an OpenMP worker spinning beside the serial
  // checkpoint writes only slows a 2-core machine down) and checkpoints come faster.
  // 3 epochs of 32 steps last about 3 s, longer than the longest delay, so every kill
  // lands inside the run: in start-up, a step, or a checkpoint write, rename or prune.
  std::vector<std::string> run = train_args(small_run_args("5", "1"));
  for (const char* a : {"--epochs", "3", "--checkpoint-every-steps", "1", "--keep-last", "2"}) {
    run.push_back(a);
  }
  std::mt19937 rng(20240611);  // fixed: a failure reproduces with the same delays
  std::uniform_int_distribution<int> delay_ms(50, 1500);
  int with_checkpoint = 0, resumes = 0;
  for (int i = 0; i < kIterations; ++i) {
    TempDir tmp;
    const fs::path dir = tmp / "ckpt";
    const int delay = delay_ms(rng);
    SCOPED_TRACE("iteration " + std::to_string(i) + ", killed after " + std::to_string(delay) +
                 " ms");
    std::vector<std::string> args = run;
    args.push_back("--checkpoint-dir");
    args.push_back(dir.string());
    BackgroundCli train(args);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    const CliResult killed = train.stop(SIGKILL);
    // A run that beat the kill must at least have succeeded.
    if (killed.signal == 0) {
      ASSERT_EQ(killed.exit_code, 0) << describe(killed);
    }

    if (!fs::exists(dir / "latest")) {
      // Killed before the first checkpoint was complete: nothing to resume, and nothing
      // may pretend otherwise. At most that first file can exist without the pointer (it
      // is renamed into place just before `latest` is written).
      EXPECT_THROW(CheckpointStore::resolve(dir.string()), std::exception);
      if (fs::exists(dir)) {
        EXPECT_LE(checkpoints_in(dir).size(), 1u);
      }
      continue;
    }
    // Once written, `latest` is replaced atomically: never empty or torn.
    const std::string latest = latest_name(dir);
    ASSERT_FALSE(latest.empty());
    ++with_checkpoint;
    // `latest` moves only after its file is complete: never to a temporary file.
    EXPECT_EQ(latest.find(".tmp"), std::string::npos) << latest;
    EXPECT_NE(latest[0], '.') << latest;
    const std::string path = CheckpointStore::resolve(dir.string());
    EXPECT_EQ(path, (dir / latest).string());
    Checkpoint c;
    ASSERT_NO_THROW(c = read_checkpoint(path)) << path;
    const auto names = checkpoints_in(dir);
    bool listed = false;
    for (const auto& n : names) {
      if (n.file != latest) continue;
      listed = true;
      EXPECT_EQ(n.epoch, c.epoch);
      EXPECT_EQ(n.step, c.global_step);
    }
    EXPECT_TRUE(listed) << "latest names '" << latest << "', not a regular checkpoint file";
    EXPECT_EQ(c.global_step, c.epoch * kStepsPerEpoch + c.batch_in_epoch);
    EXPECT_FALSE(c.parameters.empty());

    // Resuming costs up to an epoch: do it about every third time, at least kMinResumes.
    if (resumes * 3 > i) continue;
    ++resumes;
    // Just to the end of the epoch under way (or one more when it stopped at a boundary);
    // into the same directory, past whatever temporary files the kill left there.
    const int64_t target = c.epoch + 1;
    const CliResult r =
        run_cli(train_args({"--resume", dir.string(), "--epochs", std::to_string(target),
                            "--checkpoint-dir", dir.string(), "--threads", "1"}));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("epoch " + std::to_string(target) + "/" + std::to_string(target)),
              std::string::npos)
        << r.out;
    const Checkpoint done = read_checkpoint(CheckpointStore::resolve(dir.string()));
    EXPECT_EQ(done.epoch, target);
    EXPECT_EQ(done.global_step, target * kStepsPerEpoch);
    EXPECT_EQ(done.batch_in_epoch, 0);
  }
  RecordProperty("kills_with_checkpoint", with_checkpoint);
  RecordProperty("resumes", resumes);
  // The delays reach well past start-up: most kills must have had a checkpoint to test.
  EXPECT_GE(with_checkpoint, kIterations / 2);
  EXPECT_GE(resumes, kMinResumes);
}

}  // namespace
}  // namespace residual::cli_test
