#pragma once
// Streams per-sample predictions to CSV or HDF5 (chosen by the extension, .h5/.hdf5).
// CSV rows go to a temporary file as they come; an HDF5 file is built in memory and goes
// there at the end (libhdf5 then never meets a disk error). finish()
// writes, checks and moves the file into place (io/atomic_file.h); without it, or after
// any error, the target is untouched and no temporary file is left.
#include <cstdint>
#include <memory>
#include <string>

namespace residual {

class AtomicFileWriter;

class PredictionWriter {
 public:
  PredictionWriter(const std::string& path, int64_t samples, int64_t classes);
  ~PredictionWriter();
  PredictionWriter(const PredictionWriter&) = delete;
  PredictionWriter& operator=(const PredictionWriter&) = delete;

  // n rows of `classes` probabilities and their labels.
  void write(const float* probabilities, const int32_t* labels, int64_t n);
  // Closes, syncs and renames into place; returns the rows written.
  int64_t finish();

 private:
  std::string path_;
  int64_t samples_, classes_, written_ = 0;
  bool hdf5_ = false;
  std::unique_ptr<AtomicFileWriter> out_;  // the temporary file
  int64_t file_ = -1;  // hid_t of the in-memory HDF5 file
};

}  // namespace residual
