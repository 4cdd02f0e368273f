#pragma once
// Runs the real `residual` executable (black-box CLI tests), or any other program a test
// needs (mpirun, ip, a script): its standard output, standard error and exit status, plus
// small helpers for temporary files and output lines. The one place where tests start
// programs: spawn() and wait_for() serve run_cli, BackgroundCli and tests/distributed/mpi_job.
#include <sys/types.h>

#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace residual::cli_test {

struct CliResult {
  int exit_code = -1;  // the status passed to exit(); -1 when killed by a signal
  int signal = 0;      // the signal that killed the process, 0 when it exited
  std::string out;
  std::string err;
  bool timed_out = false;  // still running at wait_for's deadline, so sent its timeout signal
  double seconds = 0;      // from the start of the wait to the end of the process
};

// How spawn() starts a child (its standard input is always /dev/null).
struct SpawnOptions {
  std::vector<std::pair<std::string, std::string>> env;  // set (or replaced) in the child
  // Bytes a file may grow to (RLIMIT_FSIZE, with SIGXFSZ ignored so that writes past it
  // fail with EFBIG instead of killing the process); -1: no limit.
  long long file_size_limit = -1;
  bool search_path = false;        // a program name without '/' is looked up in PATH
  bool own_process_group = false;  // the child leads a new process group
};

// A child started by spawn().
struct Process {
  pid_t pid = -1;
  std::filesystem::path out_path, err_path;  // where its standard output and error go
  bool own_process_group = false;
};

// Starts `command` (the program, then its arguments; no shell, so nothing needs quoting)
// with standard output and error into capture_dir/stdout and capture_dir/stderr (made
// before it returns). Throws if those cannot be opened or it cannot fork; the child exits
// 127 if the program cannot be run, 125 if the file size limit cannot be set.
Process spawn(const std::vector<std::string>& command, const std::filesystem::path& capture_dir,
              const SpawnOptions& options = {});

// Waits for `process` to end and reads its output. With a timeout (seconds from the start
// of the wait; 0: at once), a process still running then is sent `timeout_signal` (its
// whole process group if it leads one) and waited for, and timed_out is set.
CliResult wait_for(const Process& process, std::optional<double> timeout_s = std::nullopt,
                   int timeout_signal = SIGKILL);

// Runs `residual args...` directly and waits. timeout_s > 0: the process is killed by
// SIGALRM after that many seconds (for tests of inputs that could block, such as a FIFO).
CliResult run_cli(const std::vector<std::string>& args, unsigned timeout_s = 0);
// Like run_cli, with `options` applied to the child (an LD_PRELOAD-ed fault-injection
// shim in `env`, a file size limit).
CliResult run_cli_with(const std::vector<std::string>& args, const SpawnOptions& options,
                       unsigned timeout_s = 0);

// The residual executable under test (env RESIDUAL_CLI_PATH, else the one built with it).
std::string cli_path();
// The repository root (env RESIDUAL_SOURCE_DIR, else the one this test was built from).
std::filesystem::path source_dir();

// models/tiny-cnn.json, the smallest model the CLI tests train.
inline std::string tiny_cnn_model() { return (source_dir() / "models" / "tiny-cnn.json").string(); }
// tests/launch/data/<name>.
std::filesystem::path test_data(const std::string& name);

// The lines of `text`, without their '\n'; a last line without '\n' counts too.
std::vector<std::string> lines_of(const std::string& text);
std::string read_text(const std::filesystem::path& path);
void write_text(const std::filesystem::path& path, const std::string& text);

// A fresh directory under the system temp dir, removed with everything in it at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Names of the entries directly inside the directory, sorted.
  std::vector<std::string> entries() const;

 private:
  std::filesystem::path path_;
};

// `residual args...` running in the background, for a test to stop with a signal; killed
// (SIGKILL) if still running when the object goes away.
class BackgroundCli {
 public:
  explicit BackgroundCli(const std::vector<std::string>& args);
  ~BackgroundCli();
  BackgroundCli(const BackgroundCli&) = delete;
  BackgroundCli& operator=(const BackgroundCli&) = delete;
  pid_t pid() const { return process_.pid; }
  bool running();
  // Sends `signal` and waits for the process to end; returns its result.
  CliResult stop(int signal);

 private:
  TempDir capture_;
  Process process_;
};

// "exit 3" / "killed by signal 11", for assertion messages.
std::string describe(const CliResult& r);

}  // namespace residual::cli_test
