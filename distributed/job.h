#pragma once
// This process's place in the job (rank and world size, for messages), the world
// communicator, how a failed rank ends the job, and the stop request a SIGINT/SIGTERM
// makes.
#include <memory>
#include <string>

#include "core/device.h"
#include "core/error.h"
#include "distributed/communicator.h"

namespace residual {

// An error that every rank raises at the same point of the same step, from values the
// ranks share (the summed gradients, the agreed configuration): only rank 0 reports it,
// the other ranks leave with the same status and say nothing.
class JobWideError : public Error {
 public:
  using Error::Error;
};

struct JobInfo {
  int rank = 0;
  int size = 1;
};
const JobInfo& job_info();

// The job's communicator over every rank, made on first use: MPI when an MPI launcher
// started this process (see launched_by_mpi), else one local rank. Records rank and size
// in job_info().
Communicator& world_communicator();
// True once world_communicator() has been made with more than one rank.
bool job_is_distributed();

// This rank's index among the ranks of its node (OMPI_COMM_WORLD_LOCAL_RANK,
// MPI_LOCALRANKID, SLURM_LOCALID), 0 when no launcher says.
int local_rank();
// The GPU this rank should use: its local rank modulo the GPUs it sees (where a launcher
// gives each rank one GPU through CUDA_VISIBLE_DEVICES, that one). An Error with one clear
// line where this build has no CUDA or this process sees no GPU.
int local_gpu_index();

// The communicator of the gradient all-reduce (and of anything else a trainer sums on
// `device`): the world communicator for the CPU; for a CUDA device, NCCL over the world
// communicator, whatever the world size (one code path for one GPU and for many) (distributed/nccl_communicator.h), made on the first call, which every
// rank must make at the same point (it is a collective). One GPU per rank: a later call
// with another CUDA device is an Error. The NCCL communicator lives until the process
// exits (never destroyed by a static destructor, which could run after the CUDA runtime
// is gone).
Communicator& gradient_communicator(Device device);
// Threads per rank when --threads is not given: the cores divided among the ranks of
// this node (OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE...), 0 for OpenMP's
// default when this process is the only one.
int default_threads_per_rank();
// Under an MPI launcher, OpenMP's idle threads must not spin against the other ranks and
// the communication: with OMP_WAIT_POLICY unset, re-executes this program with PASSIVE
// (libgomp reads it only at start-up). Call first thing in main.
void prefer_passive_openmp_under_mpi(char** argv);

// Prints "residual: error: MESSAGE" and ends this process at once with `code`, without
// unwinding or MPI_Finalize (another rank may never reach it): the launcher sees a rank
// fail and ends the others. The way out of every error once collectives have begun.
[[noreturn]] void end_job(const std::string& message, int code);

// SIGINT and SIGTERM no longer kill the process: they set a flag that the training loop
// reads at each step boundary (all ranks together), to stop cleanly with a checkpoint.
// A second signal of the same kind kills at once, as the user expects of a second Ctrl-C.
void install_stop_handlers();
// 0, or the signal that asked this process to stop.
int stop_signal();

}  // namespace residual
