// A checkpoint directory belongs to one run at a time: a CheckpointStore holds an flock on
// DIR/.lock for its lifetime, a second store fails at once naming the holder's pid, and a
// holder that died (the kernel drops its lock) does not block the next run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "io/checkpoint_store.h"
#include "io_test_util.h"

namespace residual {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

CheckpointPolicy policy_for(const std::string& dir) {
  CheckpointPolicy policy;
  policy.dir = dir;
  return policy;
}

TEST(CheckpointLock, ASecondStoreOnTheSameDirectoryFailsAtOnceNamingThePid) {
  TempDir dir;
  const std::string run = dir.file("run");
  CheckpointStore first(policy_for(run));
  test::expect_error([&] { CheckpointStore second(policy_for(run)); },
                     {"checkpoint directory '" + run + "' is in use by another run",
                      "(pid " + std::to_string(::getpid()) + ")"});
  // Another directory is free.
  CheckpointStore other(policy_for(dir.file("other")));
}

TEST(CheckpointLock, TheLockGoesWithTheStore) {
  TempDir dir;
  const std::string run = dir.file("run");
  { CheckpointStore first(policy_for(run)); }
  CheckpointStore again(policy_for(run));
  // A clean end leaves no lock file behind.
  { CheckpointStore other(policy_for(dir.file("other"))); }
  EXPECT_TRUE(fs::is_empty(dir.file("other")));
}

TEST(CheckpointLock, AStaleLockOfADeadRunDoesNotBlock) {
  TempDir dir;
  const std::string run = dir.file("run");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A run that dies holding the lock: no destructor, no cleanup.
    new CheckpointStore(policy_for(run));
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(fs::exists(run + "/.lock")) << "the dead run's lock file is still there";
  CheckpointStore next(policy_for(run));  // no error: the kernel released the dead run's lock
}

TEST(CheckpointLock, StaleTemporaryFilesOfAKilledRunAreRemoved) {
  TempDir dir;
  const std::string run = dir.file("run");
  fs::create_directory(run);
  for (const char* name : {".ckpt-e0001-s000000010.h5.tmp", ".latest.tmp", ".best.h5.tmp"}) {
    test::write_file(run + "/" + name, {1, 2, 3});
  }
  test::write_file(run + "/.notes.tmp", {1});  // not ours: kept
  CheckpointStore store(policy_for(run));
  EXPECT_EQ(fs::exists(run + "/.ckpt-e0001-s000000010.h5.tmp"), false);
  EXPECT_EQ(fs::exists(run + "/.latest.tmp"), false);
  EXPECT_EQ(fs::exists(run + "/.best.h5.tmp"), false);
  EXPECT_EQ(fs::exists(run + "/.notes.tmp"), true);
}

}  // namespace
}  // namespace residual
