// libFuzzer target: the CIFAR-10/100 binary reader. The input is
//   byte 0    flags: bit 0 CIFAR-100 (train.bin / test.bin), bit 1 the test split, bit 2
//             (CIFAR-10 training split only) each of data_batch_1..5.bin holds the whole
//             payload instead of one fifth of it;
//   the rest  the payload: the file, or the five training files.
// Opening the data set and reading every sample must work or throw residual::Error;
// anything else (a crash, another exception, a hang, a sanitizer report) is a finding.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "fuzz/fuzz_util.h"
#include "io/dataset.h"

using residual::fuzz::remove_file;
using residual::fuzz::scratch_dir;
using residual::fuzz::write_file;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const bool cifar100 = (flags & 1) != 0, test_split = (flags & 2) != 0;
  const uint8_t* payload = data + 1;
  const size_t n = size - 1;
  const std::string dir = scratch_dir();
  for (const char* name :
       {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
        "data_batch_5.bin", "test_batch.bin", "train.bin", "test.bin"}) {
    remove_file(dir + "/" + name);
  }
  if (cifar100) {
    write_file(dir + (test_split ? "/test.bin" : "/train.bin"), payload, n);
  } else if (test_split) {
    write_file(dir + "/test_batch.bin", payload, n);
  } else {
    const bool whole = (flags & 4) != 0;
    for (size_t i = 0; i < 5; ++i) {
      const size_t begin = whole ? 0 : i * n / 5, end = whole ? n : (i + 1) * n / 5;
      write_file(dir + "/data_batch_" + std::to_string(i + 1) + ".bin", payload + begin,
                 end - begin);
    }
  }
  try {
    const auto dataset =
        residual::open_dataset((cifar100 ? "cifar100:" : "cifar10:") + dir,
                               test_split ? residual::Split::kTest : residual::Split::kTrain);
    residual::fuzz::read_every_sample(*dataset);
  } catch (const residual::Error& error) {
    residual::fuzz::rejected(error);  // bad input, reported the way the CLI reports it
  }
  return 0;
}
