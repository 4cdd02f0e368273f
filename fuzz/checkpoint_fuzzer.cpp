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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = residual::fuzz::scratch_dir() + "/checkpoint.h5";
  residual::fuzz::write_file(path, data, size);
  try {
    const residual::Checkpoint checkpoint = residual::read_checkpoint(path);
    // A checkpoint that reads back must be usable: its JSON prints, its tensors hash.
    (void)checkpoint.model.dump();
    (void)residual::checkpoint_checksum(checkpoint);
  } catch (const residual::Error&) {
    // Bad input, reported the way the CLI reports it.
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
