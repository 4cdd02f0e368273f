#pragma once
// --device of train, eval, predict and bench: where the model runs. "cpu" (the default),
// "cuda" (one GPU per process: under an MPI launcher, the one of this rank's place on its
// node, so the ranks of a node take cuda:0, cuda:1, ...) or "cuda:N". Not saved in
// checkpoints: a run trained on a GPU resumes on the CPU and the reverse.
#include <string>

#include "core/device.h"

namespace residual {

// Whether `text` is spelled as --device takes it (cpu | cuda | cuda:N); the CLI's
// validator, before anything runs.
bool is_device_spelling(const std::string& text);

// The device this process uses for `text`, or an Error of one line naming the option and
// why it cannot be used here: a CPU-only build, no GPU visible, an index past the last
// GPU. "cuda" is cuda:(local rank modulo the GPUs visible), local_gpu_index()'s choice
// (distributed/job.h): where a launcher gives each rank its own GPU through
// CUDA_VISIBLE_DEVICES, the one it sees. Two ranks of a node that end up on one GPU are
// refused by NCCL when the gradient communicator is made.
Device resolve_device(const std::string& text);

}  // namespace residual
