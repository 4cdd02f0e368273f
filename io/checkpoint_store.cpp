#include "io/checkpoint_store.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLatest = "latest";

std::string file_name(const Checkpoint& c) {
  char name[64];
  std::snprintf(name, sizeof(name), "ckpt-e%04lld-s%09lld.h5", static_cast<long long>(c.epoch),
                static_cast<long long>(c.global_step));
  return name;
}

bool is_regular_checkpoint(const fs::path& p) {
  const std::string n = p.filename().string();
  return n.rfind("ckpt-e", 0) == 0 && p.extension() == ".h5";
}

}  // namespace

CheckpointStore::CheckpointStore(CheckpointPolicy policy) : policy_(std::move(policy)) {
  RESIDUAL_CHECK(!policy_.dir.empty(), "no checkpoint directory given");
  RESIDUAL_CHECK(policy_.keep_last >= 1, "--keep-last must be at least 1");
  std::error_code ec;
  fs::create_directories(policy_.dir, ec);
  RESIDUAL_CHECK(!ec && fs::is_directory(policy_.dir), "cannot create the checkpoint directory '",
                 policy_.dir, "'");
}

bool CheckpointStore::higher_is_better() const {
  const std::string& m = policy_.best_metric;
  return !(m.size() >= 4 && m.compare(m.size() - 4, 4, "loss") == 0);
}

std::string CheckpointStore::save(const Checkpoint& c) {
  const std::string name = file_name(c);
  const std::string path = (fs::path(policy_.dir) / name).string();
  write_checkpoint(path, c);
  // The pointer moves only once the file it names is complete and synced.
  write_file_atomically((fs::path(policy_.dir) / kLatest).string(), name + "\n");
  if (!policy_.best_metric.empty() && c.best_epoch == c.epoch && c.batch_in_epoch == 0 &&
      c.epoch > 0) {
    write_checkpoint((fs::path(policy_.dir) / "best.h5").string(), c);
  }
  prune(name);
  return path;
}

void CheckpointStore::prune(const std::string& keep) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(policy_.dir)) {
    if (entry.is_regular_file() && is_regular_checkpoint(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());  // names sort by epoch, then step
  const int64_t excess = static_cast<int64_t>(files.size()) - policy_.keep_last;
  for (int64_t i = 0; i < excess; ++i) {
    if (files[i].filename() == keep) continue;
    std::error_code ec;
    fs::remove(files[i], ec);  // a failed delete only costs disk space
  }
}

std::string CheckpointStore::resolve(const std::string& dir_or_file) {
  RESIDUAL_CHECK(fs::exists(dir_or_file), "checkpoint '", dir_or_file, "' does not exist");
  if (!fs::is_directory(dir_or_file)) return dir_or_file;
  const fs::path pointer = fs::path(dir_or_file) / kLatest;
  std::ifstream in(pointer);
  RESIDUAL_CHECK(in, "checkpoint directory '", dir_or_file, "' has no '", kLatest,
                 "' pointer (no checkpoint was completed there)");
  std::string name;
  std::getline(in, name);
  RESIDUAL_CHECK(!name.empty() && name.find('/') == std::string::npos, "'", pointer.string(),
                 "' does not name a checkpoint file");
  return (fs::path(dir_or_file) / name).string();
}

}  // namespace residual
