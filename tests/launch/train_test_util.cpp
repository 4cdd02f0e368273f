#include "tests/launch/train_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "io/checkpoint.h"

namespace residual::cli_test {
namespace fs = std::filesystem;

std::vector<std::string> small_run_args(const std::string& seed, const std::string& threads) {
  return {"--model", "resnet20", "--data", "synthetic:1x12x12:4", "--batch-size", "32", "--threads",
          threads,   "--seed",   seed};
}

std::vector<std::vector<std::string>> computing_commands() {
  return {train_args({"--model", tiny_cnn_model(), "--data", "synthetic:1x28x28:10"}),
          {"eval", "--checkpoint", "no-such-checkpoint"},
          {"predict", "--checkpoint", "no-such-checkpoint", "-o", "p.csv"},
          {"bench", "--model", tiny_cnn_model(), "--batch-size", "2"}};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> train_args(std::vector<std::string> args) {
  args.insert(args.begin(), "train");
  args.push_back("--no-progress");
  return args;
}

const std::string& bf16_refusal() {
  static const std::string refusal = [] {
    const CliResult r = run_cli({"bench", "--model", tiny_cnn_model(), "--steps", "1",
                                 "--warmup", "0", "--batch-size", "2", "--precision", "bf16"});
    if (r.exit_code == 0) return std::string();
    // Refused for any other reason is a failure of the test asking, not a skip.
    EXPECT_NE(r.err.find("has no native bf16"), std::string::npos) << describe(r);
    return r.err;
  }();
  return refusal;
}

std::string mnist_data() { return "mnist:" + (source_dir() / "data" / "mnist-10k").string(); }

std::vector<MetricsRow> read_metrics_csv(const fs::path& path) {
  const std::vector<std::string> lines = lines_of(read_text(path));
  std::vector<MetricsRow> rows;
  if (lines.empty()) return rows;
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    std::string cell;
    while (std::getline(in, cell, ',')) cells.push_back(cell);
    return cells;
  };
  const std::vector<std::string> header = split(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = split(lines[i]);
    EXPECT_EQ(cells.size(), header.size()) << path << " line " << i + 1 << ": " << lines[i];
    MetricsRow row;
    for (size_t c = 0; c < std::min(cells.size(), header.size()); ++c) {
      row[header[c]] = std::stod(cells[c]);
    }
    rows.push_back(row);
  }
  return rows;
}

std::vector<CheckpointName> checkpoints_in(const fs::path& dir) {
  std::vector<CheckpointName> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    long long epoch = 0, step = 0;
    char tail[8] = {};
    // The exact shape: 4-digit epoch, 9-digit step, ".h5" and nothing after it.
    if (name.size() == std::strlen("ckpt-e0000-s000000000.h5") &&
        std::sscanf(name.c_str(), "ckpt-e%4lld-s%9lld%7s", &epoch, &step, tail) == 3 &&
        std::string(tail) == ".h5") {
      found.push_back({name, epoch, step});
    }
  }
  std::sort(found.begin(), found.end(),
            [](const CheckpointName& a, const CheckpointName& b) { return a.file < b.file; });
  return found;
}

std::string latest_name(const fs::path& dir) {
  if (!fs::exists(dir / "latest")) return "";
  std::string text = read_text(dir / "latest");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

namespace {

// Names of the tensors of one group that differ (value bits or shape) or exist on one side.
std::vector<std::string> differing(const std::string& group, const std::map<std::string, Tensor>& a,
                                   const std::map<std::string, Tensor>& b) {
  std::vector<std::string> names;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      names.push_back(group + "/" + name + " (only in the first)");
    } else if (t.shape() != it->second.shape() || t.dtype() != it->second.dtype() ||
               std::memcmp(t.raw(), it->second.raw(), t.nbytes()) != 0) {
      names.push_back(group + "/" + name);
    }
  }
  for (const auto& [name, t] : b) {
    if (a.count(name) == 0) names.push_back(group + "/" + name + " (only in the second)");
  }
  return names;
}

std::vector<std::string> all_differing(const Checkpoint& a, const Checkpoint& b) {
  std::vector<std::string> names = differing("parameters", a.parameters, b.parameters);
  for (const auto& n : differing("buffers", a.buffers, b.buffers)) names.push_back(n);
  for (const auto& n : differing("optimizer", a.optimizer_state, b.optimizer_state)) {
    names.push_back(n);
  }
  return names;
}

// The metrics history without its wall-clock fields, which legitimately differ.
nlohmann::json without_timings(nlohmann::json metrics) {
  for (auto& m : metrics) {
    m.erase("images_per_s");
    m.erase("seconds");
  }
  return metrics;
}

}  // namespace

void expect_same_state(const std::string& file_a, const std::string& file_b) {
  const Checkpoint a = read_checkpoint(file_a);
  const Checkpoint b = read_checkpoint(file_b);
  // Guards against comparing two empty maps (a reader that silently found nothing).
  EXPECT_FALSE(a.parameters.empty()) << file_a;
  EXPECT_FALSE(a.buffers.empty()) << file_a;
  EXPECT_FALSE(a.optimizer_state.empty()) << file_a;
  const std::vector<std::string> names = all_differing(a, b);
  std::string list;
  for (size_t i = 0; i < names.size() && i < 8; ++i) list += "\n  " + names[i];
  EXPECT_TRUE(names.empty()) << names.size() << " tensors differ between " << file_a << " and "
                             << file_b << ", first:" << list;
  EXPECT_EQ(a.optimizer, b.optimizer);
  EXPECT_EQ(a.optimizer_steps, b.optimizer_steps);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.global_step, b.global_step);
  EXPECT_EQ(a.batch_in_epoch, b.batch_in_epoch);
  EXPECT_EQ(a.learning_rate, b.learning_rate);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  EXPECT_EQ(a.best_value, b.best_value);
  EXPECT_EQ(without_timings(a.metrics), without_timings(b.metrics));
}

int count_differing_tensors(const std::string& file_a, const std::string& file_b) {
  return static_cast<int>(all_differing(read_checkpoint(file_a), read_checkpoint(file_b)).size());
}

std::string describe_listing(const fs::path& dir) {
  std::vector<std::string> lines;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ostringstream line;
    line << entry.path().filename().string();
    if (entry.is_regular_file()) {
      line << " " << entry.file_size() << " " << entry.last_write_time().time_since_epoch().count();
    }
    lines.push_back(line.str());
  }
  std::sort(lines.begin(), lines.end());
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

}  // namespace residual::cli_test
