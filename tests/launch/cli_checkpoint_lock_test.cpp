// Two runs into one checkpoint directory: the second fails at once, naming the first's
// pid, and leaves the first's files alone; once the first is gone (even killed, leaving its
// lock file behind) the directory is free again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/launch/cli_runner.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> tiny_run(const fs::path& ckpt, const std::string& epochs) {
  return train_args({"--model", test_data("tiny-bn.json").string(), "--data", "synthetic:1x4x4:2",
                     "--batch-size", "256", "--threads", "1", "--workers", "1", "--epochs", epochs,
                     "--checkpoint-dir", ckpt.string()});
}

// Waits until `path` holds `text` (the running first run has taken the lock).
bool wait_for_text(const fs::path& path, const std::string& text) {
  for (int i = 0; i < 1000; ++i) {
    if (fs::exists(path) && read_text(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(CliCheckpointLock, ASecondRunIntoTheSameDirectoryFailsAtOnce) {
  TempDir dir;
  const fs::path ckpt = dir / "cc";
  BackgroundCli first(tiny_run(ckpt, "100000"));  // runs until the test kills it
  const std::string pid = std::to_string(first.pid());
  ASSERT_TRUE(wait_for_text(ckpt / ".lock", pid)) << "the first run never locked " << ckpt;

  const CliResult second = run_cli(tiny_run(ckpt, "1"));
  EXPECT_EQ(second.signal, 0) << describe(second);
  EXPECT_EQ(second.exit_code, 1) << describe(second);
  EXPECT_EQ(second.err, "residual: error: checkpoint directory '" + ckpt.string() +
                            "' is in use by another run (pid " + pid + ")\n");
  EXPECT_EQ(second.out.find("epoch "), std::string::npos) << "it trained anyway:\n" << second.out;
  EXPECT_TRUE(first.running()) << "the second run disturbed the first";

  // Killed, the first run cannot clean up: its lock file stays, but the kernel dropped
  // the lock, so the next run goes ahead.
  first.stop(SIGKILL);
  ASSERT_TRUE(fs::exists(ckpt / ".lock"));
  const CliResult third = run_cli(tiny_run(ckpt, "1"));
  EXPECT_EQ(third.exit_code, 0) << describe(third);
  EXPECT_FALSE(fs::exists(ckpt / ".lock")) << "a finished run removes its lock file";
}

}  // namespace
}  // namespace residual::cli_test
