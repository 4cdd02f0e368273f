// libFuzzer target: the MNIST IDX reader, both files at once. The input is
//   byte 0     flags: bit 0 the images file is gzipped (.gz), bit 1 the labels file is,
//              bit 2 the test split (t10k-*) instead of the training split (train-*);
//   bytes 1-2  n, big-endian;
//   the rest   the images file (its first n bytes) followed by the labels file.
// Opening "mnist:DIR" and reading every sample must work or throw residual::Error;
// anything else (a crash, another exception, a hang, a sanitizer report) is a finding.
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "fuzz/fuzz_util.h"
#include "io/dataset.h"

using residual::fuzz::remove_file;
using residual::fuzz::scratch_dir;
using residual::fuzz::write_file;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const size_t cut = std::min<size_t>((size_t{data[1]} << 8) | data[2], size - 3);
  const uint8_t* payload = data + 3;
  const std::string dir = scratch_dir();
  const bool test_split = (flags & 4) != 0;
  const std::string prefix = dir + (test_split ? "/t10k" : "/train");
  const std::string images = prefix + "-images-idx3-ubyte", labels = prefix + "-labels-idx1-ubyte";
  // The reader prefers a raw file to its .gz twin: leave only this input's files.
  for (const char* split : {"/train", "/t10k"}) {
    for (const char* kind : {"-images-idx3-ubyte", "-labels-idx1-ubyte"}) {
      remove_file(dir + split + kind);
      remove_file(dir + split + kind + ".gz");
    }
  }
  write_file(images + ((flags & 1) != 0 ? ".gz" : ""), payload, cut);
  write_file(labels + ((flags & 2) != 0 ? ".gz" : ""), payload + cut, size - 3 - cut);
  try {
    const auto dataset = residual::open_dataset(
        "mnist:" + dir, test_split ? residual::Split::kTest : residual::Split::kTrain);
    residual::fuzz::read_every_sample(*dataset);
  } catch (const residual::Error& error) {
    residual::fuzz::rejected(error);  // bad input, reported the way the CLI reports it
  }
  return 0;
}
