#pragma once
// Runs the real `residual` executable (black-box CLI tests): its standard output, standard
// error and exit status, plus small helpers for temporary files and output lines.
#include <filesystem>
#include <string>
#include <vector>

namespace residual::cli_test {

struct CliResult {
  int exit_code = -1;  // the status passed to exit(); -1 when killed by a signal
  int signal = 0;      // the signal that killed the process, 0 when it exited
  std::string out;
  std::string err;
};

// Runs `residual args...` directly (no shell, so arguments need no quoting) and waits.
// timeout_s > 0: the process is killed by SIGALRM after that many seconds (for tests of
// inputs that could block, such as a FIFO).
CliResult run_cli(const std::vector<std::string>& args, unsigned timeout_s = 0);

// The residual executable under test (env RESIDUAL_CLI_PATH, else the one built with it).
std::string cli_path();
// The repository root (env RESIDUAL_SOURCE_DIR, else the one this test was built from).
std::filesystem::path source_dir();
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

// "exit 3" / "killed by signal 11", for assertion messages.
std::string describe(const CliResult& r);

}  // namespace residual::cli_test
