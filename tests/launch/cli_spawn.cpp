#include "tests/launch/cli_spawn.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace residual::cli_test {
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

// Forks and execs the CLI with stdout/stderr into `capture`; returns the child's pid.
pid_t spawn(const std::vector<std::string>& args, const SpawnOptions& options,
            const TempDir& capture) {
  const std::string out_path = capture / "stdout";
  const std::string err_path = capture / "stderr";
  const std::string program = cli_path();
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::vector<std::string> env = environment_with(options.env);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int in = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0) _exit(126);
    if (dup2(out, 1) < 0 || dup2(err, 2) < 0 || dup2(in, 0) < 0) _exit(126);
    if (options.file_size_limit >= 0) {
      // Writes past the limit then fail with EFBIG instead of killing the process.
      signal(SIGXFSZ, SIG_IGN);
      struct rlimit limit;
      limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(options.file_size_limit);
      if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(125);
    }
    execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

CliResult wait_for(pid_t pid, const TempDir& capture) {
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
  r.out = read_text(capture / "stdout");
  r.err = read_text(capture / "stderr");
  return r;
}

}  // namespace

CliResult run_cli_with(const std::vector<std::string>& args, const SpawnOptions& options) {
  TempDir capture;
  return wait_for(spawn(args, options, capture), capture);
}

BackgroundCli::BackgroundCli(const std::vector<std::string>& args)
    : pid_(spawn(args, SpawnOptions{}, capture_)) {}

BackgroundCli::~BackgroundCli() {
  if (pid_ > 0) stop(SIGKILL);
}

bool BackgroundCli::running() {
  if (pid_ <= 0) return false;
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid == 0;  // nothing to collect yet
}

CliResult BackgroundCli::stop(int signal) {
  kill(pid_, signal);
  CliResult r = wait_for(pid_, capture_);
  pid_ = -1;
  return r;
}

std::string fault_shim_path() {
  const char* env = std::getenv("RESIDUAL_FAULT_SHIM");
  return env && *env ? env : RESIDUAL_FAULT_SHIM;
}

}  // namespace residual::cli_test
