#pragma once
// The NCCL implementation of Communicator: one GPU per rank, collectives on CUDA device
// memory. Compiled where the CUDA backend and NCCL were found (distributed/CMakeLists.txt);
// elsewhere make_nccl_communicator() is an Error saying so.
//
// Start-up rides on an existing communicator, the bootstrap (MPI, or the local one for
// world size 1): rank 0 makes NCCL's unique id, the bootstrap broadcasts it, and every
// rank joins a non-blocking NCCL communicator (ncclCommInitRankConfig, blocking = 0)
// polled under the deadline, so that no NCCL call can hang the host: on the deadline or
// an NCCL error the communicator is aborted (ncclCommAbort) and the job ends with the
// collective, the phase and this rank's history, as the MPI communicator does.
//
// Which memory goes where, decided per call from the pointer:
// - CUDA device memory (on this communicator's GPU): NCCL, on the GPU's communication
//   stream (ops/cuda/cuda_context.h). The stream first waits for the work queued so far
//   on the compute stream (the gradients are written), the buffers are declared to the
//   caching allocator with record_stream, and when a collective is waited for, the
//   compute stream waits for it (the optimizer reads the sums after). wait() blocks the
//   host until the collective is complete, under the deadline.
// - Host memory: the bootstrap communicator (the control plane, as Horovod does it):
//   step statistics, flags, start-up checks and synchronized batch norm's statistics
//   (host doubles, core/replica_sum.h) need no staging through the GPU. barrier() and
//   the membership of split() are the bootstrap's too.
// The bootstrap must outlive this communicator. Its phase and deadline are shared with
// this one, and every collective NCCL carries is also entered in the bootstrap's log, so
// the bootstrap's history and fingerprint (the trainer compares the world's once per
// step) cover the whole sequence of the job.
//
// Determinism: NCCL sums in an order fixed by the world size, the topology, the NCCL
// version and its settings (the algorithm, ring or tree, is chosen by message size from
// those alone), so runs on the same machines are bit-reproducible; NCCL_ALGO=Ring pins
// the algorithm where NVLink SHARP (NVLS) would otherwise be chosen. The sums differ in
// the last bits from MPI's, whose order is its own.
#include <memory>

#include "distributed/communicator.h"

namespace residual {

// Whether this build has the NCCL communicator.
bool nccl_compiled();

// Collective over the ranks of `bootstrap`: every rank calls it at the same point. `gpu`
// is this rank's CUDA device index; -1 takes local_gpu_index() (distributed/job.h). An
// Error with one clear line where there is no NCCL or no GPU.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int gpu = -1);

}  // namespace residual
