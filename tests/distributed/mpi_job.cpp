#include "tests/distributed/mpi_job.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace residual::cli_test {
namespace fs = std::filesystem;

std::vector<std::string> mpirun_args(int ranks) {
  return {"mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
          "--mca", "btl", "self,vader", "-np", std::to_string(ranks)};
}

Job start_job(const std::vector<std::string>& command, const std::string& capture_dir) {
  Job job;
  job.out_path = capture_dir + "/stdout";
  job.err_path = capture_dir + "/stderr";
  std::vector<char*> argv;
  for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  job.pid = fork();
  if (job.pid == 0) {
    setpgid(0, 0);
    const int out = open(job.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(job.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int in = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0) _exit(126);
    dup2(out, 1);
    dup2(err, 2);
    dup2(in, 0);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  setpgid(job.pid, job.pid);
  return job;
}

JobResult wait_job(const Job& job, double timeout_s) {
  const auto start = std::chrono::steady_clock::now();
  JobResult r;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(job.pid, &status, WNOHANG);
    if (done == job.pid) break;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r.seconds > timeout_s) {
      r.timed_out = true;
      kill(-job.pid, SIGKILL);
      waitpid(job.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = read_text(job.out_path);
  r.err = read_text(job.err_path);
  return r;
}

JobResult run_job(const std::vector<std::string>& command, double timeout_s) {
  TempDir capture;
  return wait_job(start_job(command, capture.path().string()), timeout_s);
}

JobResult run_mpi_train(int ranks, const std::vector<std::string>& args, double timeout_s) {
  std::vector<std::string> command = mpirun_args(ranks);
  command.push_back(cli_path());
  command.push_back("train");
  command.insert(command.end(), args.begin(), args.end());
  command.push_back("--no-progress");
  return run_job(command, timeout_s);
}

std::vector<pid_t> residual_processes_with(const std::string& marker) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec;
    const fs::path exe = fs::read_symlink(entry.path() / "exe", ec);
    if (ec || exe.filename() != "residual") continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(marker) != std::string::npos) pids.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return pids;
}

pid_t rank_process(const std::string& marker, int rank) {
  const std::string wanted = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (pid_t pid : residual_processes_with(marker)) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    std::string entry;
    while (std::getline(in, entry, '\0')) {
      if (entry == wanted) return pid;
    }
  }
  return -1;
}

}  // namespace residual::cli_test
