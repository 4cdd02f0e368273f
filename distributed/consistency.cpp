#include "distributed/consistency.h"

#include <cstring>
#include <string>

#include "core/hash.h"
#include "distributed/job.h"

namespace residual {
namespace {

// A parameter's values where the host can read them: the tensor itself on the CPU, a copy
// of it otherwise (start-up and once per epoch: the copy is not worth avoiding).
Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

}  // namespace

void check_ranks_agree(Communicator& world, const nlohmann::json& facts) {
  if (world.size() == 1) return;
  std::string mine = facts.dump();
  int64_t length = static_cast<int64_t>(mine.size());
  world.broadcast(&length, sizeof(length), 0, "start-up: configuration length");
  std::string root(static_cast<size_t>(length), '\0');
  if (world.rank() == 0) root = mine;
  world.broadcast(root.data(), length, 0, "start-up: configuration");
  const nlohmann::json reference = nlohmann::json::parse(root);
  std::string difference;
  for (const auto& [key, value] : reference.items()) {
    const auto it = facts.find(key);
    const std::string here = it == facts.end() ? "(nothing)" : it->dump();
    if (here != value.dump()) {
      difference = "rank " + std::to_string(world.rank()) + " has " + key + " = " + here +
                   " but rank 0 has " + value.dump();
      break;
    }
  }
  for (const auto& [key, value] : facts.items()) {
    if (difference.empty() && !reference.contains(key)) {
      difference = "rank " + std::to_string(world.rank()) + " has " + key + " = " + value.dump() +
                   " which rank 0 lacks";
    }
  }
  // The lowest differing rank: max of (size - rank).
  int64_t culprit = difference.empty() ? 0 : world.size() - world.rank();
  world.all_reduce_max(&culprit, 1, "start-up: agreement");
  if (culprit == 0) return;
  const int from = static_cast<int>(world.size() - culprit);
  char message[768] = {};
  if (world.rank() == from) std::snprintf(message, sizeof(message), "%s", difference.c_str());
  world.broadcast(message, sizeof(message), from, "start-up: disagreement");
  throw JobWideError(std::string("the ranks were started differently: ") + message +
                     " (every rank must run the same options, model and data)");
}

void broadcast_parameters(Communicator& world, const std::vector<Parameter*>& params) {
  if (world.size() == 1) return;
  for (Parameter* p : params) {
    Tensor host = on_host(p->value);
    world.broadcast(host.raw(), static_cast<int64_t>(host.nbytes()), 0, "start-up: rank 0's parameters");
    if (!p->value.device().is_cpu()) p->value.copy_from(host);
  }
}

void average_across_ranks(Communicator& world, const std::vector<Parameter*>& params) {
  if (world.size() == 1) return;
  for (Parameter* p : params) {
    const int64_t n = p->value.numel();
    std::vector<double> values(static_cast<size_t>(n));
    Tensor host = on_host(p->value);
    const float* v = host.f32();
    for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = v[i];
    world.all_reduce(values.data(), n, "running statistics mean");
    float* out = host.f32();
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(values[static_cast<size_t>(i)] / world.size());
    if (!p->value.device().is_cpu()) p->value.copy_from(host);
  }
}

void check_parameters_identical(Communicator& world, const std::vector<Parameter*>& params,
                                const char* when) {
  if (world.size() == 1) return;
  uint64_t h = kFnv1aOffset;
  for (const Parameter* p : params) {
    const Tensor host = on_host(p->value);
    h = fnv1a(h, host.raw(), host.nbytes());
  }
  // Exact in doubles: 20-bit values, their squares, summed over < 2^12 ranks.
  const double f = static_cast<double>(h & 0xFFFFF);
  double sums[2] = {f, f * f};
  world.all_reduce(sums, 2, "parameter agreement");
  const double k = world.size();
  if (sums[0] != k * f || sums[1] != k * f * f) {
    end_job("rank " + std::to_string(world.rank()) + ": the ranks' parameters differ " + when +
                ": the replicas diverged (a non-deterministic reduction or a bug); stopping",
            1);
  }
}

}  // namespace residual
