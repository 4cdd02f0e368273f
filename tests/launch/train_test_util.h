#pragma once
// Helpers for the end-to-end `residual train` tests: a small fast configuration, reading
// metrics files and checkpoint directories, and comparing two checkpoints bit for bit.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/launch/cli_runner.h"

namespace residual::cli_test {

// resnet20 on 12x12 synthetic images, 4 classes: 1024 training images, so 32 steps of 32
// per epoch and about 0.3 s per epoch with two threads.
constexpr int64_t kStepsPerEpoch = 32;
std::vector<std::string> small_run_args(const std::string& seed = "1",
                                        const std::string& threads = "2");

// train, eval, predict and bench with just enough arguments to parse (the checkpoint
// does not exist): the commands that take --device and --precision.
std::vector<std::vector<std::string>> computing_commands();

// `a` followed by `b`.
std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b);

// `args` with "train" in front and --no-progress appended (a bare CLI run, no bar).
std::vector<std::string> train_args(std::vector<std::string> args);

// Why `residual` refuses --precision bf16 on this machine (its error line: no native bf16
// on this CPU), or "" when it runs it; asked once per process with a one-step bench.
const std::string& bf16_refusal();

// "mnist:<source>/data/mnist-10k": the real digits shipped with the project.
std::string mnist_data();

// A metrics CSV: the header's column names and one map per row.
using MetricsRow = std::map<std::string, double>;
std::vector<MetricsRow> read_metrics_csv(const std::filesystem::path& path);

// A regular checkpoint file name, ckpt-e<epochs done>-s<global step>.h5, parsed.
struct CheckpointName {
  std::string file;
  int64_t epoch = 0, step = 0;
};
// The regular checkpoints in `dir`, sorted by name (that is, by epoch then step).
std::vector<CheckpointName> checkpoints_in(const std::filesystem::path& dir);
// The file name that dir/latest holds (its line without the '\n'); "" if there is none.
std::string latest_name(const std::filesystem::path& dir);

// Expects the two checkpoint files to hold bit-identical training state: parameters,
// buffers, optimizer state and counters, progress, and the metrics history (timings
// aside). Records gtest failures naming the first differing tensors.
void expect_same_state(const std::string& file_a, const std::string& file_b);
// How many tensors differ in value or shape between the two files (parameters, buffers
// and optimizer state together); tensors present in only one count too.
int count_differing_tensors(const std::string& file_a, const std::string& file_b);

// Names, sizes and modification times of everything directly in `dir`, one line each,
// to show that a failed command left a directory exactly as it was.
std::string describe_listing(const std::filesystem::path& dir);

}  // namespace residual::cli_test
