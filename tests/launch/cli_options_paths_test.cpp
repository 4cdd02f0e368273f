// Path options refuse what they cannot use before any work starts (issue 8): directories
// where a file is expected, special files (/dev/zero read until memory ran out, a FIFO
// blocked forever), files too large to be what they claim, outputs that are directories,
// special files or residual checkpoints.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/launch/cli_expect.h"
#include "tests/launch/cli_runner.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

// A metrics file `residual plot` draws.
constexpr char kMetrics[] = "epoch,train_loss,val_loss\n1,0.5,0.6\n2,0.4,0.5\n";

std::vector<std::string> fast_train(std::vector<std::string> extra,
                                    const std::string& data = "synthetic:1x28x28:10") {
  std::vector<std::string> args = {
      "train",    "--model", tiny_cnn_model(), "--data", data,
      "--epochs", "1",       "--threads",      "1",      "--no-progress"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string make_fifo(const TempDir& dir, const std::string& name) {
  const std::string path = dir / name;
  EXPECT_EQ(mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

// A sparse file of `bytes` (no disk space used).
std::string make_large_file(const TempDir& dir, const std::string& name, int64_t bytes) {
  const std::string path = dir / name;
  write_text(path, "{");
  fs::resize_file(path, static_cast<uintmax_t>(bytes));
  return path;
}

// One epoch with checkpoints into dir/run; returns the checkpoint directory.
fs::path train_checkpoint(const TempDir& dir) {
  const CliResult r = run_cli(fast_train({"--checkpoint-dir", dir / "run"}), 60);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  return dir / "run";
}

std::string first_checkpoint(const fs::path& run) {
  for (const auto& e : fs::directory_iterator(run)) {
    const std::string name = e.path().filename();
    if (name.rfind("ckpt-", 0) == 0) return e.path();
  }
  ADD_FAILURE() << "no ckpt-* in " << run;
  return "";
}

// ---- model files ----

TEST(CliModelPathTest, SpecialFilesAreRefusedNotRead) {
  TempDir dir;
  const std::string fifo = make_fifo(dir, "model.json");
  for (const std::string command : {"summary", "export-model", "bench"}) {
    SCOPED_TRACE(command);
    expect_error(run_cli({command, "--model", "/dev/zero"}, 20),
                 {"'/dev/zero'", "not a regular file"});
    expect_error(run_cli({command, "--model", fifo}, 20), {"'" + fifo + "'", "FIFO"});
  }
  expect_error(run_cli({"train", "--model", fifo, "--data", "synthetic:1x28x28:10"}, 20),
               {"'" + fifo + "'", "FIFO"});
}

TEST(CliModelPathTest, OversizedModelFileIsRefused) {
  TempDir dir;
  const std::string big = make_large_file(dir, "big.json", (int64_t{64} << 20) + 1);
  expect_error(run_cli({"summary", "--model", big}, 20), {"'" + big + "'", "64 MiB"});
}

// ---- data files ----

TEST(CliDataPathTest, SpecialFilesInDataSetsAreRefusedNotRead) {
  TempDir dir;
  const std::string fifo = make_fifo(dir, "data.h5");
  expect_error(run_cli(fast_train({}, "hdf5:" + fifo), 20), {fifo, "not a regular file"},
               Output::kAllowed);
  fs::create_directory(dir / "mnist");
  make_fifo(dir, "mnist/train-images-idx3-ubyte");
  expect_error(run_cli(fast_train({}, "mnist:" + (dir / "mnist").string()), 20),
               {"train-images-idx3-ubyte", "not a regular file"}, Output::kAllowed);
  fs::create_directory(dir / "gz");
  fs::create_symlink("/dev/zero", dir / "gz" / "train-images-idx3-ubyte.gz");
  expect_error(run_cli(fast_train({}, "mnist:" + (dir / "gz").string()), 20),
               {"train-images-idx3-ubyte.gz", "not a regular file"}, Output::kAllowed);
}

// ---- checkpoints ----

TEST(CliCheckpointPathTest, SpecialLatestPointerIsRefusedNotRead) {
  TempDir dir;
  fs::create_directory(dir / "fifo_run");
  const std::string fifo = make_fifo(dir, "fifo_run/latest");
  fs::create_directory(dir / "zero_run");
  fs::create_symlink("/dev/zero", dir / "zero_run" / "latest");
  for (const fs::path& run : {dir / "fifo_run", dir / "zero_run"}) {
    SCOPED_TRACE(run);
    const std::string latest = (run / "latest").string();
    expect_error(run_cli({"eval", "--checkpoint", run}, 20), {latest, "not a regular file"});
    expect_error(run_cli({"predict", "--checkpoint", run, "-o", dir / "p.csv"}, 20),
                 {latest, "not a regular file"});
    expect_error(run_cli({"train", "--resume", run}, 20), {latest, "not a regular file"});
  }
}

// ---- outputs ----

TEST(CliOutputPathTest, OutputsThatAreDirectoriesOrSpecialFilesAreRefused) {
  TempDir dir;
  const std::string fifo = make_fifo(dir, "out");
  fs::create_directory(dir / "sub");
  write_text(dir / "metrics.csv", kMetrics);
  for (const std::string& out : {fifo, (dir / "sub").string()}) {
    SCOPED_TRACE(out);
    expect_error(run_cli({"export-model", "--model", "resnet20", "-o", out}, 20), {"-o", out});
    expect_error(run_cli({"plot", "--metrics", dir / "metrics.csv", "-o", out}, 20), {"-o", out});
    expect_error(run_cli(fast_train({"--metrics-file", out}), 20), {"--metrics-file", out});
  }
  EXPECT_TRUE(fs::is_fifo(fifo));  // not replaced by a regular file
}

// A new directory for an output is made, as the checkpoint directory is (the README's
// demo writes its metrics into its new checkpoint directory); one under a file is refused
// before training.
TEST(CliOutputPathTest, OutputInAMissingDirectoryIsMadeButNotUnderAFile) {
  TempDir dir;
  const std::string out = dir / "new" / "deeper" / "metrics.csv";
  const CliResult made = run_cli(fast_train({"--metrics-file", out}), 60);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  EXPECT_TRUE(fs::is_regular_file(out));
  write_text(dir / "file", "x");
  const CliResult r = run_cli(fast_train({"--metrics-file", dir / "file" / "metrics.csv"}), 20);
  expect_error(r, {"--metrics-file", (dir / "file").string(), "Not a directory"});
}

TEST(CliOutputPathTest, CheckpointDirectoryThatIsAFileIsRefused) {
  TempDir dir;
  write_text(dir / "file", "x");
  expect_error(run_cli(fast_train({"--checkpoint-dir", dir / "file"}), 20),
               {"--checkpoint-dir", (dir / "file").string(), "not a directory"});
  expect_error(run_cli(fast_train({"--checkpoint-dir", (dir / "file" / "sub").string()}), 20),
               {"--checkpoint-dir", (dir / "file").string(), "not a directory"});
}

TEST(CliOutputPathTest, PlotDoesNotOverwriteItsOwnMetrics) {
  TempDir dir;
  write_text(dir / "metrics.csv", kMetrics);
  expect_error(run_cli({"plot", "--metrics", dir / "metrics.csv", "-o", dir / "metrics.csv"}, 20),
               {"-o", "metrics.csv", "--metrics"});
  EXPECT_EQ(read_text(dir / "metrics.csv"), kMetrics);
}

TEST(CliOutputPathTest, CheckpointsAreNeverOverwritten) {
  TempDir dir;
  const fs::path run = train_checkpoint(dir);
  const std::string checkpoint = first_checkpoint(run);
  ASSERT_FALSE(checkpoint.empty());
  const std::string best = (run / "best.h5").string();
  ASSERT_TRUE(fs::exists(best));
  const auto size = fs::file_size(checkpoint);
  // predict into the checkpoint it reads, and into another checkpoint of the run
  expect_error(run_cli({"predict", "--checkpoint", run, "-o", checkpoint}, 20),
               {"-o", checkpoint, "checkpoint"});
  expect_error(run_cli({"predict", "--checkpoint", checkpoint, "-o", best}, 20),
               {"-o", best, "checkpoint"});
  expect_error(run_cli({"export-model", "--model", "resnet20", "-o", best}, 20),
               {"-o", best, "checkpoint"});
  write_text(dir / "m.csv", kMetrics);
  expect_error(run_cli({"plot", "--metrics", dir / "m.csv", "-o", best}, 20), {"-o", best});
  expect_error(run_cli(fast_train({"--metrics-file", best}), 20), {"--metrics-file", best});
  // The run's `latest` pointer is part of the run too.
  const std::string latest = (run / "latest").string();
  const std::string pointer = read_text(latest);
  expect_error(run_cli({"predict", "--checkpoint", run, "-o", latest}, 20),
               {"-o", latest, "pointer"});
  expect_error(run_cli({"export-model", "--model", "resnet20", "-o", latest}, 20),
               {"-o", latest, "pointer"});
  EXPECT_EQ(read_text(latest), pointer);
  EXPECT_EQ(fs::file_size(checkpoint), size);
  // A previous predictions file may be replaced.
  const std::string csv = dir / "p.csv";
  for (int i = 0; i < 2; ++i) {
    const CliResult r = run_cli({"predict", "--checkpoint", run, "-o", csv}, 60);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
  }
}

}  // namespace
}  // namespace residual::cli_test
