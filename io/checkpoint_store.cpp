#include "io/checkpoint_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLatest = "latest";
constexpr const char* kBest = "best.h5";
constexpr const char* kLock = ".lock";

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

// ".NAME.tmp" of a file the store writes: a leftover of a killed run.
bool is_our_temporary(const fs::path& p) {
  const std::string n = p.filename().string();
  if (n.size() < 6 || n[0] != '.' || n.compare(n.size() - 4, 4, ".tmp") != 0) return false;
  const std::string name = n.substr(1, n.size() - 5);
  return name == kLatest || name == kBest || is_regular_checkpoint(name);
}

// The pid a lock file names, or "" (the holder may not have written it yet).
std::string pid_in(int fd) {
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof(text) - 1, 0);
  std::string pid;
  for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9'; ++i) pid += text[i];
  return pid;
}

}  // namespace

CheckpointStore::CheckpointStore(CheckpointPolicy policy) : policy_(std::move(policy)) {
  RESIDUAL_CHECK(!policy_.dir.empty(), "no checkpoint directory given");
  RESIDUAL_CHECK(policy_.keep_last >= 1, "--keep-last must be at least 1");
  std::error_code ec;
  fs::create_directories(policy_.dir, ec);
  RESIDUAL_CHECK(!ec && fs::is_directory(policy_.dir), "cannot create the checkpoint directory '",
                 policy_.dir, "'", ec ? ": " + ec.message() : std::string());
  lock_directory();
  remove_stale_temporaries();
}

CheckpointStore::~CheckpointStore() {
  if (lock_fd_ < 0) return;
  // Removed while still locked: a run that opened this file meanwhile finds, once it has
  // the lock, that the name no longer refers to it, and starts over.
  ::unlink(lock_path_.c_str());
  ::close(lock_fd_);
}

void CheckpointStore::lock_directory() {
  lock_path_ = (fs::path(policy_.dir) / kLock).string();
  for (int attempt = 0;; ++attempt) {
    const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    RESIDUAL_CHECK(fd >= 0, "cannot lock the checkpoint directory '", policy_.dir,
                   "': ", std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const std::string pid = pid_in(fd);
      ::close(fd);
      RESIDUAL_CHECK(error != EWOULDBLOCK, "checkpoint directory '", policy_.dir,
                     "' is in use by another run", pid.empty() ? "" : " (pid " + pid + ")");
      fail("cannot lock the checkpoint directory '", policy_.dir, "': ", std::strerror(error));
    }
    // The previous holder may have removed the file between our open and our flock.
    struct stat held = {}, named = {};
    if (::fstat(fd, &held) == 0 && ::stat(lock_path_.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      lock_fd_ = fd;
      break;
    }
    ::close(fd);
    RESIDUAL_CHECK(attempt < 100, "cannot lock the checkpoint directory '", policy_.dir,
                   "': its lock file keeps changing");
  }
  // The pid is only for the message another run shows.
  const std::string pid = std::to_string(::getpid()) + "\n";
  errno = ENOSPC;  // a short write sets none
  if (::ftruncate(lock_fd_, 0) != 0 ||
      ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail("cannot write the lock file '", lock_path_, "': ", std::strerror(error));
  }
}

void CheckpointStore::remove_stale_temporaries() {
  std::error_code ec, ignored;
  for (fs::directory_iterator it(policy_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (is_our_temporary(it->path())) fs::remove(it->path(), ignored);
  }
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
    write_checkpoint((fs::path(policy_.dir) / kBest).string(), c);
  }
  prune(name);
  return path;
}

void CheckpointStore::prune(const std::string& keep) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(policy_.dir)) {
    if (entry.is_regular_file() && is_regular_checkpoint(entry.path()))
      files.push_back(entry.path());
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
