#pragma once
// One checkpoint file (HDF5; the layout is docs/checkpoint-format.md): everything an
// exact resume needs, readable with h5py/h5dump without residual.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace residual {

constexpr int kCheckpointFormatVersion = 1;

struct Checkpoint {
  nlohmann::json model;   // the model spec (docs/model-format.md)
  nlohmann::json config;  // the training configuration
  std::map<std::string, Tensor> parameters;  // trainable, by parameter name
  std::map<std::string, Tensor> buffers;     // BN running statistics, by name
  std::string optimizer;                     // sgd | adam | adamw
  int64_t optimizer_steps = 0;
  std::map<std::string, Tensor> optimizer_state;  // "<param>/momentum", "<param>/adam_m", ...
  // Progress: epochs finished, steps taken, and the position inside the current epoch
  // (batches done and the running sums of its training metrics).
  int64_t epoch = 0, global_step = 0, batch_in_epoch = 0, samples_in_epoch = 0;
  int64_t correct_in_epoch = 0;
  double loss_sum_in_epoch = 0;
  // Every random stream is a pure function of (seed, epoch, step, sample, layer), so the
  // seed and the progress above pin them all (data order, augmentation, dropout).
  uint64_t seed = 0;
  int64_t global_batch_size = 0, world_size = 1;
  double learning_rate = 0;        // the rate of the last step taken
  nlohmann::json metrics = nlohmann::json::array();  // history: one object per epoch
  std::string best_metric;         // e.g. "val_top1"
  double best_value = 0;
  int64_t best_epoch = 0;
};

// Writes `path` atomically (io/atomic_file.h): the file is built in memory, written to a
// temporary file beside `path` with every write, the fsync and the close checked, read
// back and checked, renamed over `path`, and the directory is fsync-ed. A crash at any
// moment leaves either the old file or the new one; an error (a full disk: "cannot write
// checkpoint 'PATH': No space left on device") leaves the old one and no temporary file.
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Reads and validates a checkpoint: a missing, truncated, corrupt or foreign file, a newer
// format version or a checksum mismatch is an Error naming the file.
Checkpoint read_checkpoint(const std::string& path);

// FNV-1a over every tensor's name, shape and bytes, in name order.
uint64_t checkpoint_checksum(const Checkpoint& checkpoint);

// The first 512 bytes of a checkpoint are an HDF5 user block holding residual's header:
// a magic string, the format version, the length and a CRC-32 of the rest of the file.
// read_checkpoint checks them with plain reads before HDF5 parses a byte, so a truncated
// or corrupt file is refused cleanly (libhdf5 1.10 can crash on corrupt files).
constexpr int64_t kCheckpointHeaderBytes = 512;
// Writes that header into an HDF5 file created with a 512-byte user block: a file on disk,
// or a whole file held in memory (`size` bytes from `file`).
void seal_checkpoint_file(const std::string& path);
void seal_checkpoint_image(unsigned char* file, size_t size);

}  // namespace residual
