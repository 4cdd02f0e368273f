#pragma once
// Running the real `residual` executable under conditions the plain run_cli cannot set:
// extra environment variables (an LD_PRELOAD-ed fault-injection shim), a file size limit
// (RLIMIT_FSIZE, with SIGXFSZ ignored so writes fail with EFBIG), and runs in the
// background that a test stops with a signal.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/launch/cli_runner.h"

namespace residual::cli_test {

struct SpawnOptions {
  std::vector<std::pair<std::string, std::string>> env;  // set (or replaced) in the child
  long long file_size_limit = -1;                        // bytes; -1: no limit
};

// Like run_cli, with `options` applied to the child.
CliResult run_cli_with(const std::vector<std::string>& args, const SpawnOptions& options);

// `residual args...` running in the background; killed (SIGKILL) if still running when
// the object goes away.
class BackgroundCli {
 public:
  explicit BackgroundCli(const std::vector<std::string>& args);
  ~BackgroundCli();
  BackgroundCli(const BackgroundCli&) = delete;
  BackgroundCli& operator=(const BackgroundCli&) = delete;
  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` and waits for the process to end; returns its result.
  CliResult stop(int signal);

 private:
  CliResult wait();
  TempDir capture_;
  pid_t pid_ = -1;
};

// The LD_PRELOAD shim of tests/io/fault_injection (env RESIDUAL_FAULT_SHIM, else the one
// built with the tests).
std::string fault_shim_path();

}  // namespace residual::cli_test
