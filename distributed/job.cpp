#include "distributed/job.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <csignal>
#include <cstdio>

#include "core/device_memory.h"
#include "distributed/mpi_communicator.h"
#include "distributed/nccl_communicator.h"

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

int local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    if (const char* text = std::getenv(v)) return std::max(0, std::atoi(text));
  }
  return 0;
}

int local_gpu_index() {
  RESIDUAL_CHECK(cuda_compiled(), "--device cuda: this residual was built without CUDA");
  const int count = cuda_device_count();
  if (count == 0) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    fail("rank ", g_job.rank, " sees no CUDA device",
         visible ? str_cat(" (CUDA_VISIBLE_DEVICES=", visible, ")") : std::string(),
         ": --device cuda needs one GPU per rank");
  }
  return local_rank() % count;
}

Communicator& gradient_communicator(Device device) {
  Communicator& world = world_communicator();
  // A GPU world of one rank goes through NCCL too, as PyTorch DDP does: one code path
  // for one GPU and for many, so a single-GPU run tests what a multi-GPU run uses.
  // A CUDA build without NCCL still trains on one GPU (the world has nothing to sum);
  // several ranks are refused up front by --device (launch/device_option.cpp).
  if (device.is_cpu() || (!nccl_compiled() && world.size() == 1)) return world;
  // Never deleted (see job.h); the driver takes NCCL's resources back at exit.
  static Communicator* nccl = nullptr;
  static int nccl_gpu = -1;
  if (!nccl) {
    nccl = make_nccl_communicator(world, device.index).release();
    nccl_gpu = device.index;
  }
  RESIDUAL_CHECK(device.index == nccl_gpu, "the gradient communicator of this rank is on cuda:",
                 nccl_gpu, " and cannot also serve ", device.str(), ": one GPU per rank");
  return *nccl;
}

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
