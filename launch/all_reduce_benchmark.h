#pragma once
// The gradient path's bandwidth against the transport's: for each total size, the Reducer
// (parameters of `tensor_bytes` each, bucketed under the caps, launched in order) against
// one plain all-reduce of the whole buffer, timed back to back in the same run. The buffers
// live on `device` and are summed by `gradients` (the world communicator on the CPU, NCCL
// on a GPU); the ranks line up with barriers of `world`.
#include <cstdint>
#include <ostream>
#include <vector>

#include "core/device.h"
#include "distributed/communicator.h"

namespace residual {

struct AllReduceBenchRow {
  int64_t bytes = 0;
  int64_t buckets = 0;
  double plain_ms = 0, bucketed_ms = 0;  // medians
  double plain_gb_s = 0, bucketed_gb_s = 0;  // algorithm bandwidth: bytes / time
};

std::vector<AllReduceBenchRow> run_all_reduce_benchmark(Communicator& world,
                                                        Communicator& gradients, Device device,
                                                        const std::vector<double>& sizes_mb,
                                                        double bucket_cap_mb, int repetitions,
                                                        std::ostream& log);

}  // namespace residual
