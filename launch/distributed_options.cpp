#include "launch/distributed_options.h"

#include <iostream>

#include "distributed/job.h"
#include "launch/cli_validators.h"

namespace residual {

void add_distributed_options(CLI::App& command, TrainConfig& c) {
  command.add_flag("--sync-bn", c.sync_bn,
                   "synchronized batch norm: statistics over the global batch of all ranks");
  command.add_option("--sync-bn-group-size", c.sync_bn_group_size,
                     "ranks per synchronized batch-norm group, e.g. the ranks of one node "
                     "(0: all ranks; must divide the world size)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))->capture_default_str();
  command.add_option("--accumulate", c.accumulate,
                     "micro-batches per step: each rank's share of the global batch is cut "
                     "into this many, their gradients added before the one all-reduce")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}))->capture_default_str();
  command.add_option("--bucket-cap-mb", c.bucket_cap_mb,
                     "gradient all-reduce bucket size in MB (the first bucket is 1 MB)")
      ->check(CLI::Range(0.001, 4096.0))->capture_default_str();
  command.add_option("--comm-timeout", c.comm_timeout_s,
                     "seconds a collective may wait for the other ranks before the job ends")
      ->check(CLI::Range(0.1, 86400.0))->capture_default_str();
}

std::ostream& rank0_out() {
  static std::ostream discard(nullptr);
  return world_communicator().rank() == 0 ? std::cout : discard;
}

}  // namespace residual
