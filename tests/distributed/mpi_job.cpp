#include "tests/distributed/mpi_job.h"

#include <filesystem>
#include <fstream>

namespace residual::cli_test {
namespace fs = std::filesystem;

std::vector<std::string> mpirun_args(int ranks) {
  return {"mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
          "--mca", "btl", "self,vader", "-np", std::to_string(ranks)};
}

Job start_job(const std::vector<std::string>& command, const std::string& capture_dir) {
  SpawnOptions options;
  options.search_path = true;
  options.own_process_group = true;
  return spawn(command, capture_dir, options);
}

JobResult wait_job(const Job& job, double timeout_s) { return wait_for(job, timeout_s); }

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
