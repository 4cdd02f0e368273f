#pragma once
// The train command's data-parallel options, and what a run under an MPI launcher
// needs from the command around it (rank-0-only output, the exit after a stop signal).
#include <ostream>

#include <CLI/CLI.hpp>

#include "launch/train_config.h"

namespace residual {

void add_distributed_options(CLI::App& command, TrainConfig& config);

// std::cout on rank 0, a stream that discards everything on the other ranks.
std::ostream& rank0_out();

// Thrown to leave the program with `status` after a clean stop (the message is printed
// already); main() turns it into the exit status.
struct ExitRequest {
  int status;
};

}  // namespace residual
