#include "tests/launch/cli_runner.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace residual::cli_test {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// The environment of this process with `extra` set on top, as "NAME=value" strings.
std::vector<std::string> environment_with(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const auto& [name, value] : extra) replaced |= entry.rfind(name + "=", 0) == 0;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// Pointers into `strings`, ending in nullptr, as exec wants them.
std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (const std::string& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// waitpid, again after a signal; false: still running (only with WNOHANG).
bool reap(pid_t pid, int* status, int flags) {
  for (;;) {
    const pid_t done = waitpid(pid, status, flags);
    if (done == pid) return true;
    if (done == 0) return false;
    if (errno != EINTR) die("waitpid");
  }
}

// open() with O_CLOEXEC (mode 0600 for a new file); throws naming the file.
int open_file(const fs::path& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) die("cannot open " + path.string());
  return fd;
}

std::vector<std::string> cli_command(const std::vector<std::string>& args) {
  std::vector<std::string> command{cli_path()};
  command.insert(command.end(), args.begin(), args.end());
  return command;
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

Process spawn(const std::vector<std::string>& command, const fs::path& capture_dir,
              const SpawnOptions& options) {
  if (command.empty()) throw std::invalid_argument("spawn: no program to run");
  Process p;
  p.out_path = capture_dir / "stdout";
  p.err_path = capture_dir / "stderr";
  p.own_process_group = options.own_process_group;
  const std::vector<char*> argv = c_strings(command);
  const std::vector<std::string> env = environment_with(options.env);
  const std::vector<char*> envp = c_strings(env);
  // Opened here, not in the child: the files exist once spawn returns, even if the child
  // is killed at once (wait_for reads them). The program gets only its copies as 0, 1, 2.
  const int out = open_file(p.out_path, O_WRONLY | O_CREAT | O_TRUNC);
  const int err = open_file(p.err_path, O_WRONLY | O_CREAT | O_TRUNC);
  const int in = open_file("/dev/null", O_RDONLY);

  p.pid = fork();
  if (p.pid == 0) {
    // Child: only async-signal-safe calls until exec.
    if (options.own_process_group) setpgid(0, 0);
    if (dup2(out, 1) < 0 || dup2(err, 2) < 0 || dup2(in, 0) < 0) _exit(126);
    if (options.file_size_limit >= 0) {
      // Writes past the limit then fail with EFBIG instead of killing the process.
      signal(SIGXFSZ, SIG_IGN);
      struct rlimit limit;
      limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(options.file_size_limit);
      if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(125);
    }
    if (options.search_path) {
      execvpe(argv[0], argv.data(), envp.data());
    } else {
      execve(argv[0], argv.data(), envp.data());
    }
    _exit(127);
  }
  const int fork_errno = errno;
  for (const int fd : {out, err, in}) close(fd);
  errno = fork_errno;
  if (p.pid < 0) die("fork");
  // Here too, so that the group exists before anyone signals it.
  if (options.own_process_group) setpgid(p.pid, p.pid);
  return p;
}

CliResult wait_for(const Process& process, std::optional<double> timeout_s, int timeout_signal) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto elapsed = [&start] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  CliResult r;
  int status = 0;
  // Without a deadline the wait blocks; with one it looks every 20 ms.
  while (!reap(process.pid, &status, timeout_s ? WNOHANG : 0)) {
    if (elapsed() > *timeout_s) {
      r.timed_out = true;
      kill(process.own_process_group ? -process.pid : process.pid, timeout_signal);
      reap(process.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.seconds = elapsed();
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  r.out = read_text(process.out_path);
  r.err = read_text(process.err_path);
  return r;
}

CliResult run_cli_with(const std::vector<std::string>& args, const SpawnOptions& options,
                       unsigned timeout_s) {
  TempDir capture;
  const Process p = spawn(cli_command(args), capture.path(), options);
  return timeout_s > 0 ? wait_for(p, timeout_s, SIGALRM) : wait_for(p);
}

CliResult run_cli(const std::vector<std::string>& args, unsigned timeout_s) {
  return run_cli_with(args, SpawnOptions{}, timeout_s);
}

BackgroundCli::BackgroundCli(const std::vector<std::string>& args)
    : process_(spawn(cli_command(args), capture_.path())) {}

BackgroundCli::~BackgroundCli() {
  if (process_.pid <= 0) return;
  try {
    stop(SIGKILL);
  } catch (...) {  // a throw from a destructor would end the whole test binary
  }
}

bool BackgroundCli::running() {
  if (process_.pid <= 0) return false;
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(process_.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return false;
  }
  return info.si_pid == 0;  // nothing to collect yet
}

CliResult BackgroundCli::stop(int signal) {
  kill(process_.pid, signal);
  // Forget the pid before waiting: if the wait throws, nothing signals a pid that may
  // since belong to another process.
  Process process = process_;
  process_.pid = -1;
  return wait_for(process);
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
