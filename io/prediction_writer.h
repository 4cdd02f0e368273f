#pragma once
// Streams per-sample predictions to CSV or HDF5 (chosen by the extension, .h5/.hdf5),
// writing to a temporary file that finish() moves into place.
#include <cstdint>
#include <fstream>
#include <string>

namespace residual {

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
  std::string path_, tmp_;
  int64_t samples_, classes_, written_ = 0;
  bool hdf5_ = false, finished_ = false;
  std::ofstream csv_;
  int64_t file_ = -1;  // hid_t of the HDF5 file
};

}  // namespace residual
