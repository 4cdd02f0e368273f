#pragma once
// Runs `mpirun -np K residual ...` jobs from a test: in the foreground with a deadline,
// or in the background to signal one rank; lists the ranks' processes.
#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/launch/cli_runner.h"

namespace residual::cli_test {

// mpirun with what this machine needs (root, more ranks than cores, shared memory).
std::vector<std::string> mpirun_args(int ranks);

// Starts `program args...` (looked up in PATH) in a new process group, output to files in
// `capture_dir` (cli_runner's spawn).
using Job = Process;
Job start_job(const std::vector<std::string>& command, const std::string& capture_dir);
// Waits up to `timeout_s` seconds (0: ends it now if it still runs); then kills the whole
// process group (exit -1, signal SIGKILL recorded, and timed_out set).
using JobResult = CliResult;
JobResult wait_job(const Job& job, double timeout_s);
JobResult run_job(const std::vector<std::string>& command, double timeout_s);

// `mpirun -np K residual train ARGS --no-progress`.
JobResult run_mpi_train(int ranks, const std::vector<std::string>& args, double timeout_s = 120);

// Pids of the residual processes (not mpirun) whose command line contains `marker`.
std::vector<pid_t> residual_processes_with(const std::string& marker);
// The pid of rank `rank` among them (its OMPI_COMM_WORLD_RANK), or -1.
pid_t rank_process(const std::string& marker, int rank);

}  // namespace residual::cli_test
