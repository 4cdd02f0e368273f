// The NCCL communicator of a build without the CUDA backend or without NCCL: none. The
// entry point exists so callers compile alike, and says why it cannot help.
#include "core/error.h"
#include "distributed/nccl_communicator.h"

namespace residual {

bool nccl_compiled() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, int) {
  fail("the NCCL communicator is not in this build: residual was built without CUDA or "
       "without NCCL (see the 'residual: NCCL' line of the CMake configure output)");
}

}  // namespace residual
