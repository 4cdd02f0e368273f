// libFuzzer target: arbitrary bytes as a checkpoint file. read_checkpoint() must return
// or throw residual::Error (the expected outcome for bad input); anything else (a crash,
// any other exception, a hang, a sanitizer report, an HDF5 object left open) is a finding.
#include <hdf5.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "fuzz/fuzz_util.h"
#include "io/checkpoint.h"

// RESIDUAL_FUZZ_SEAL=1 writes a valid header (CRC-32 included) over every input before
// reading it, so mutations reach libhdf5's parser instead of stopping at the CRC. That
// mode finds bugs in libhdf5 1.10 itself (see docs/checkpoint-format.md) and is not run
// by CI; the default mode checks what a user meets: a damaged file is refused cleanly.
bool seal_inputs() {
  static const bool seal = std::getenv("RESIDUAL_FUZZ_SEAL") != nullptr;
  return seal;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = residual::fuzz::scratch_dir() + "/checkpoint.h5";
  residual::fuzz::write_file(path, data, size);
  try {
    if (seal_inputs()) residual::seal_checkpoint_file(path);
    const residual::Checkpoint checkpoint = residual::read_checkpoint(path);
    // A checkpoint that reads back must be usable: its JSON prints, its tensors hash.
    (void)checkpoint.model.dump();
    (void)residual::checkpoint_checksum(checkpoint);
    if (residual::fuzz::verbose()) {
      std::fprintf(stderr, "read: epoch %lld, %zu parameters\n",
                   static_cast<long long>(checkpoint.epoch), checkpoint.parameters.size());
    }
  } catch (const residual::Error& error) {
    residual::fuzz::rejected(error);  // bad input, reported the way the CLI reports it
  }
  // Every HDF5 object read_checkpoint() opened is closed again, on errors too: a leaked
  // file handle would keep the next input's file from opening.
  const ssize_t open_objects = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open_objects != 0) {
    std::fprintf(stderr, "read_checkpoint left %zd HDF5 objects open\n", open_objects);
    std::abort();
  }
  return 0;
}
