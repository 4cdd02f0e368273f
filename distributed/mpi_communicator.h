#pragma once
// The MPI implementation of Communicator (CPU ranks). Only the main thread calls MPI.
#include <memory>

#include "distributed/communicator.h"

namespace residual {

// True when an MPI launcher started this process (mpirun/mpiexec, or srun with PMIx/PMI):
// then the world comes from MPI; otherwise it is one local rank and MPI is not touched.
bool launched_by_mpi();

// Initialises MPI once (MPI_THREAD_FUNNELED) and returns a communicator over all ranks.
std::unique_ptr<Communicator> make_mpi_communicator();

// MPI_Finalize, if MPI was initialised. Only on the normal exit path: every rank must
// reach it, so error paths end the process with end_job() instead.
void finalize_mpi();

}  // namespace residual
