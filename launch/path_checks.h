#pragma once
// Paths checked before any work starts, with lstat/stat only (nothing is opened, so a FIFO
// cannot block): an input must be a regular file of a sane size (reading /dev/zero never
// ends, a FIFO blocks forever); an output must be a regular file or new, in an existing
// writable directory, and never a residual checkpoint (one mistyped -o used to overwrite
// a run's checkpoint without a word). Errors name the option and the path.
#include <cstdint>
#include <string>

namespace residual {

constexpr int64_t kMaxModelFileBytes = int64_t{64} << 20;
constexpr int64_t kMaxConfigFileBytes = int64_t{1} << 20;

// `path` must be an existing, readable regular file of at most `max_bytes`; `what` names
// it in the error ("config file", "model file").
void check_input_file(const std::string& path, const std::string& what, int64_t max_bytes);

// A zoo name passes; an existing path must be a model file as check_input_file says (a
// missing one is left to the model resolver, whose error lists the zoo).
void check_model_argument(const std::string& name_or_path);

// A checkpoint to read (--checkpoint, --resume, --init-from): a directory's `latest`
// pointer must be a small regular file (read with a plain getline, a FIFO blocked and
// /dev/zero never ended). The checkpoint file itself is checked by the reader.
void check_checkpoint_argument(const std::string& path);

// An output file the command will create or replace: not a directory or special file, its
// directory exists and is writable, and it is not a residual checkpoint.
// `make_directory`: a missing parent directory is made (if its nearest existing ancestor
// is writable) instead of refused: train's --metrics-file, which usually lives in the
// checkpoint directory the run makes.
void check_output_file(const std::string& path, const std::string& option,
                       bool make_directory = false);

// An output directory, created (with its parents) if missing: it, or its nearest existing
// ancestor, must be a writable directory.
void check_output_dir(const std::string& path, const std::string& option);

// Refuses an output that is the same file as an input the command reads.
void check_not_input(const std::string& output, const std::string& output_option,
                     const std::string& input, const std::string& input_option);

// Whether `path` starts with residual's checkpoint magic (docs/checkpoint-format.md).
// Reads 16 bytes of a regular file; false for anything else.
bool is_residual_checkpoint(const std::string& path);

}  // namespace residual
