#pragma once
// Start-up agreement between the ranks: they must train the same thing, and begin from
// the same weights.
#include <vector>

#include <nlohmann/json.hpp>

#include "core/layer.h"
#include "distributed/communicator.h"

namespace residual {

// `facts`: a flat JSON object of what must agree (options, model hash, data sizes...).
// Rank 0's copy is broadcast; each rank compares. If any differ, every rank throws the
// same JobWideError naming the lowest differing rank, the first differing key and both
// values. Memory and traffic do not grow with the world size.
void check_ranks_agree(Communicator& world, const nlohmann::json& facts);

// Rank 0's values of every parameter and buffer, to every rank.
void broadcast_parameters(Communicator& world, const std::vector<Parameter*>& params);

// Element-wise mean of the values over the ranks (batch-norm running statistics when
// each rank keeps its own).
void average_across_ranks(Communicator& world, const std::vector<Parameter*>& params);

// Every rank must hold bit-identical trainable parameters after a step; a cheap check
// (a 40-bit fingerprint summed with its square) that ends the job if they diverged.
void check_parameters_identical(Communicator& world, const std::vector<Parameter*>& params,
                                const char* when);

}  // namespace residual
