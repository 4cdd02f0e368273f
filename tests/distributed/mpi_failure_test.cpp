// Failures of a running data-parallel job: a rank killed, a rank stopped, a stop signal.
// Each must end every rank in bounded time, leave no process behind, and leave a
// checkpoint directory that still loads.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "io/checkpoint.h"
#include "io/checkpoint_store.h"
#include "tests/distributed/mpi_job.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

// A long run (it is always ended early) whose checkpoint directory marks its processes.
std::vector<std::string> long_run(const fs::path& dir, const std::string& timeout = "300") {
  std::vector<std::string> command = mpirun_args(2);
  const std::vector<std::string> train = {
      cli_path(), "train", "--model", "resnet20", "--data", "synthetic:1x12x12:4", "--epochs", "200",
      "--batch-size", "32", "--threads", "1", "--no-progress", "--checkpoint-dir", dir.string(),
      "--checkpoint-every-steps", "5", "--comm-timeout", timeout};
  command.insert(command.end(), train.begin(), train.end());
  return command;
}

// Waits until both ranks run and the first checkpoint exists (the job is in its loop).
void wait_until_training(const fs::path& dir) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(dir / "latest") && rank_process(dir.string(), 1) > 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << "the job did not start training within 60 s";
}

void expect_no_process_left(const fs::path& dir) {
  // The launcher reaps its ranks just after it exits itself: allow it a moment.
  for (int i = 0; i < 100 && !residual_processes_with(dir.string()).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(residual_processes_with(dir.string()).empty()) << "a rank outlived its job";
}

void expect_latest_loads(const fs::path& dir) {
  ASSERT_TRUE(fs::exists(dir / "latest"));
  EXPECT_NO_THROW(read_checkpoint(CheckpointStore::resolve(dir.string())));
}

// SIGKILL at a random moment, ten times: every rank exits (non-zero) within 30 s, and the
// latest checkpoint loads.
TEST(MpiFailure, ARankKilledAtARandomMomentEndsTheJobAndTheLatestCheckpointLoads) {
  std::mt19937 rng(2026);
  for (int repetition = 0; repetition < 10; ++repetition) {
    TempDir dir, capture;
    const Job job = start_job(long_run(dir.path()), capture.path().string());
    wait_until_training(dir.path());
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 1500)(rng)));
    const int victim = static_cast<int>(rng() % 2);
    const pid_t pid = rank_process(dir.path().string(), victim);
    ASSERT_GT(pid, 0);
    kill(pid, SIGKILL);
    const JobResult r = wait_job(job, 30);
    EXPECT_FALSE(r.timed_out) << "repetition " << repetition << ": the job outlived a dead rank by 30 s";
    EXPECT_NE(r.exit_code, 0);
    expect_no_process_left(dir.path());
    expect_latest_loads(dir.path());
  }
}

// SIGSTOP: the other rank's collective deadline ends the job, naming the step and the
// collective, within the timeout plus 30 s.
TEST(MpiFailure, AStoppedRankEndsTheJobAtTheCollectiveDeadline) {
  TempDir dir, capture;
  const Job job = start_job(long_run(dir.path(), "3"), capture.path().string());
  wait_until_training(dir.path());
  const pid_t pid = rank_process(dir.path().string(), 1);
  ASSERT_GT(pid, 0);
  kill(pid, SIGSTOP);
  const JobResult r = wait_job(job, 3 + 30);
  EXPECT_FALSE(r.timed_out) << "no deadline ended the job";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 0: collective #"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did not complete within 3 s (--comm-timeout) at step "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("last collectives: "), std::string::npos) << r.err;
  expect_no_process_left(dir.path());
  expect_latest_loads(dir.path());
}

// SIGTERM to one rank (a scheduler's notice): every rank stops after the same step, rank 0
// writes a checkpoint there, and the job says how to resume; the resume then runs.
TEST(MpiFailure, SigtermToOneRankStopsEveryRankAtTheSameStepWithACheckpoint) {
  TempDir dir, capture;
  const Job job = start_job(long_run(dir.path()), capture.path().string());
  wait_until_training(dir.path());
  const pid_t pid = rank_process(dir.path().string(), 1);
  ASSERT_GT(pid, 0);
  kill(pid, SIGTERM);
  const JobResult r = wait_job(job, 60);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("stopped by SIGTERM after a complete step; resume with: residual train --resume " +
                       dir.path().string()),
            std::string::npos)
      << r.out << r.err;
  expect_no_process_left(dir.path());
  const Checkpoint c = read_checkpoint(CheckpointStore::resolve(dir.path().string()));
  EXPECT_EQ(c.world_size, 2);
  // The stop checkpoint is the last step taken, not an older periodic one.
  const std::vector<CheckpointName> all = checkpoints_in(dir.path());
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().step, c.global_step);
  EXPECT_NE(r.out.find("checkpoint " + (dir.path() / all.back().file).string()), std::string::npos) << r.out;
}

// SIGTERM to mpirun: it forwards the signal to the ranks, which stop the same way (Open MPI
// sends SIGKILL one second later: enough for this small model's checkpoint).
TEST(MpiFailure, SigtermToMpirunStopsCleanlyWithACheckpoint) {
  TempDir dir, capture;
  const Job job = start_job(long_run(dir.path()), capture.path().string());
  wait_until_training(dir.path());
  kill(job.pid, SIGTERM);
  const JobResult r = wait_job(job, 60);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.out.find("stopped by SIGTERM after a complete step; resume with"), std::string::npos)
      << r.out << r.err;
  expect_no_process_left(dir.path());
  expect_latest_loads(dir.path());
}

// One process (issue 8): Ctrl-C finishes the step, writes a checkpoint, removes nothing
// half-written, says how to resume and exits 130; the resume then runs.
TEST(StopSignal, CtrlCInOneProcessStopsAfterTheStepWithACheckpointAndAResumeLine) {
  TempDir dir, capture;
  const std::vector<std::string> command = {
      cli_path(), "train", "--model", "resnet20", "--data", "synthetic:1x12x12:4", "--epochs", "200",
      "--batch-size", "32", "--threads", "2", "--no-progress", "--checkpoint-dir", dir.path().string(),
      "--checkpoint-every-steps", "3"};
  const Job job = start_job(command, capture.path().string());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(dir.path() / "latest") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(dir.path() / "latest"));
  kill(job.pid, SIGINT);
  const JobResult r = wait_job(job, 30);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 130) << describe(r) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("stopped by SIGINT after a complete step; resume with: residual train --resume " +
                       dir.path().string()),
            std::string::npos)
      << r.out;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().extension(), entry.path().extension() == ".tmp" ? ".none" : entry.path().extension())
        << "a temporary file was left: " << entry.path();
  }
  const Checkpoint c = read_checkpoint(CheckpointStore::resolve(dir.path().string()));
  EXPECT_EQ(checkpoints_in(dir.path()).back().step, c.global_step) << "the stop wrote no checkpoint";
  const CliResult resumed = run_cli({"train", "--resume", dir.path().string(), "--epochs",
                                     std::to_string(c.epoch + 1), "--no-progress"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
}

}  // namespace
}  // namespace residual::cli_test
