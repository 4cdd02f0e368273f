#include "distributed/job.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <csignal>
#include <cstdio>

#include "distributed/mpi_communicator.h"

namespace residual {
namespace {

JobInfo g_job;
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int signal) {
  if (g_stop_signal.load() == signal) {
    // The second Ctrl-C: the default action, now.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  g_stop_signal.store(signal);
}

}  // namespace

const JobInfo& job_info() { return g_job; }

Communicator& world_communicator() {
  static std::unique_ptr<Communicator> world;
  if (!world) {
    world = launched_by_mpi() ? make_mpi_communicator() : make_local_communicator();
    g_job.rank = world->rank();
    g_job.size = world->size();
  }
  return *world;
}

bool job_is_distributed() { return g_job.size > 1; }

int default_threads_per_rank() {
  int local = 0;
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}) {
    if (const char* text = std::getenv(v)) {
      local = std::atoi(text);
      break;
    }
  }
  if (local <= 1) return 0;
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<int>(std::max<long>(1, cores / local));
}

void prefer_passive_openmp_under_mpi(char** argv) {
  if (!launched_by_mpi() || std::getenv("OMP_WAIT_POLICY")) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);
  // If exec fails, run on with the active policy: slower, still correct.
}

void end_job(const std::string& message, int code) {
  std::fflush(stdout);
  std::fprintf(stderr, "residual: error: %s\n", message.c_str());
  std::fflush(stderr);
  ::_exit(code);
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stop_signal() { return g_stop_signal.load(); }

}  // namespace residual
