#pragma once
// The one collective that synchronised batch normalisation needs. Core defines it and
// never includes MPI or distributed/; distributed/ implements it over its communicator.
#include <cstdint>

namespace residual {

// Adds values element-wise across the replicas of a synchronised batch-norm group, in
// place, identically on every replica (the same result bits everywhere, so that every
// replica normalises with the same statistics and keeps the same running statistics).
//
// Contract with the layers that call it (core/layers/batch_norm_layer.cpp): in a training
// pass every BatchNormalization layer calls sum() exactly once in forward (n = 1 + 2 * C:
// the row count, then the sums of x and x^2 per channel) and once in backward (n = 2 * C),
// on every replica, including a replica whose shard has no rows, in the model's fixed
// layer order. Inference passes never call it.
class ReplicaSum {
 public:
  virtual ~ReplicaSum() = default;
  virtual void sum(double* values, int64_t n) = 0;
};

}  // namespace residual
