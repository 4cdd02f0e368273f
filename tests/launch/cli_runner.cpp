#include "tests/launch/cli_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace residual::cli_test {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

std::string cli_path() {
  const char* env = std::getenv("RESIDUAL_CLI_PATH");
  return env && *env ? env : RESIDUAL_CLI_PATH;
}

fs::path source_dir() {
  const char* env = std::getenv("RESIDUAL_SOURCE_DIR");
  return env && *env ? fs::path(env) : fs::path(RESIDUAL_SOURCE_DIR);
}

fs::path test_data(const std::string& name) {
  return source_dir() / "tests" / "launch" / "data" / name;
}

CliResult run_cli(const std::vector<std::string>& args, unsigned timeout_s) {
  TempDir capture;
  const std::string out_path = capture / "stdout";
  const std::string err_path = capture / "stderr";
  const std::string program = cli_path();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int in = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0) _exit(126);
    if (dup2(out, 1) < 0 || dup2(err, 2) < 0 || dup2(in, 0) < 0) _exit(126);
    if (timeout_s > 0) alarm(timeout_s);  // survives exec
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  CliResult r;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  for (;;) {
    path_ = fs::temp_directory_path() /
            ("residual_cli_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    if (fs::create_directory(path_)) break;  // false: it existed (a leftover), try the next
  }
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string describe(const CliResult& r) {
  std::string s = r.signal ? "killed by signal " + std::to_string(r.signal)
                           : "exit " + std::to_string(r.exit_code);
  return s + "\n--- stderr ---\n" + r.err + "--- stdout (" + std::to_string(r.out.size()) +
         " bytes) ---\n" + r.out.substr(0, 2000);
}

}  // namespace residual::cli_test
