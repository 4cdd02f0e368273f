#pragma once
// Synchronized batch norm's reduction: the ReplicaSum that core's BatchNormalization
// asks for (core/replica_sum.h), carried by a Communicator over the BN group (the whole
// world, or --sync-bn-group-size consecutive ranks, e.g. one node).
#include <memory>

#include "core/replica_sum.h"
#include "distributed/communicator.h"

namespace residual {

class CommunicatorReplicaSum : public ReplicaSum {
 public:
  explicit CommunicatorReplicaSum(Communicator& group) : group_(group) {}
  void sum(double* values, int64_t n) override;

 private:
  Communicator& group_;
};

// The communicator of this rank's synchronized-BN group: `group_size` consecutive ranks
// (0 or the world size: the world itself). The world size must be a multiple of it.
std::unique_ptr<Communicator> make_batch_norm_group(Communicator& world, int64_t group_size);

}  // namespace residual
