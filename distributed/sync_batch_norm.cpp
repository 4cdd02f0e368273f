#include "distributed/sync_batch_norm.h"

#include "core/error.h"

namespace residual {

void CommunicatorReplicaSum::sum(double* values, int64_t n) {
  group_.all_reduce(values, n, "batch-norm statistics");
}

std::unique_ptr<Communicator> make_batch_norm_group(Communicator& world, int64_t group_size) {
  if (group_size <= 0) group_size = world.size();
  RESIDUAL_CHECK(group_size <= world.size() && world.size() % group_size == 0,
                 "--sync-bn-group-size ", group_size, " does not divide the world size ",
                 world.size());
  return world.split(static_cast<int>(world.rank() / group_size), "batch-norm group split");
}

}  // namespace residual
