#include "io/prediction_writer.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hdf5_util.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

bool is_hdf5_path(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  return ext == ".h5" || ext == ".hdf5";
}

void create_dataset(hid_t file, const char* name, hid_t type, std::vector<hsize_t> dims) {
  Scoped space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Scoped set(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Dclose);
  RESIDUAL_CHECK(set.ok(), "cannot create dataset '", name, "'");
}

// Writes rows [first, first + n) of a dataset whose row length is `width` (0: 1-D).
void write_rows(hid_t file, const char* name, hid_t mem_type, const void* data, int64_t first,
                int64_t n, int64_t width) {
  Scoped set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  Scoped space(H5Dget_space(set.get()), H5Sclose);
  std::vector<hsize_t> start{static_cast<hsize_t>(first)}, count{static_cast<hsize_t>(n)};
  if (width > 0) {
    start.push_back(0);
    count.push_back(static_cast<hsize_t>(width));
  }
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Scoped memory(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  RESIDUAL_CHECK(H5Dwrite(set.get(), mem_type, memory.get(), space.get(), H5P_DEFAULT, data) >= 0,
                 "cannot write dataset '", name, "'");
}

}  // namespace

PredictionWriter::PredictionWriter(const std::string& path, int64_t samples, int64_t classes)
    : path_(path), samples_(samples), classes_(classes), hdf5_(is_hdf5_path(path)) {
  tmp_ = temp_path_for(path);
  if (hdf5_) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    silence_hdf5_errors();
    file_ = H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    RESIDUAL_CHECK(file_ >= 0, "cannot create '", path, "'");
    create_dataset(file_, "probabilities", H5T_IEEE_F32LE,
                   {static_cast<hsize_t>(samples), static_cast<hsize_t>(classes)});
    create_dataset(file_, "predicted", H5T_STD_I32LE, {static_cast<hsize_t>(samples)});
    create_dataset(file_, "labels", H5T_STD_I32LE, {static_cast<hsize_t>(samples)});
  } else {
    csv_.open(tmp_, std::ios::trunc);
    RESIDUAL_CHECK(csv_, "cannot create '", path, "'");
    csv_ << "index,label,predicted";
    for (int64_t k = 0; k < classes; ++k) csv_ << ",p" << k;
    csv_ << "\n";
  }
}

PredictionWriter::~PredictionWriter() {
  if (finished_) return;
  if (hdf5_ && file_ >= 0) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Fclose(file_);
  }
  csv_.close();
  std::error_code ec;
  fs::remove(tmp_, ec);  // an interrupted write leaves nothing behind
}

void PredictionWriter::write(const float* p, const int32_t* labels, int64_t n) {
  RESIDUAL_CHECK(written_ + n <= samples_, "more predictions than samples");
  std::vector<int32_t> predicted(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p + i * classes_;
    int64_t best = 0;
    for (int64_t k = 1; k < classes_; ++k) best = row[k] > row[best] ? k : best;
    predicted[i] = static_cast<int32_t>(best);
  }
  if (hdf5_) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    write_rows(file_, "probabilities", H5T_NATIVE_FLOAT, p, written_, n, classes_);
    write_rows(file_, "predicted", H5T_NATIVE_INT32, predicted.data(), written_, n, 0);
    write_rows(file_, "labels", H5T_NATIVE_INT32, labels, written_, n, 0);
  } else {
    char buf[32];
    for (int64_t i = 0; i < n; ++i) {
      csv_ << written_ + i << "," << labels[i] << "," << predicted[i];
      for (int64_t k = 0; k < classes_; ++k) {
        std::snprintf(buf, sizeof(buf), ",%.6g", p[i * classes_ + k]);
        csv_ << buf;
      }
      csv_ << "\n";
    }
    RESIDUAL_CHECK(csv_.good(), "error writing '", tmp_, "'");
  }
  written_ += n;
}

int64_t PredictionWriter::finish() {
  if (hdf5_) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    RESIDUAL_CHECK(H5Fclose(file_) >= 0, "cannot close '", tmp_, "'");
    file_ = -1;
  } else {
    csv_.close();
    RESIDUAL_CHECK(!csv_.fail(), "error writing '", tmp_, "'");
  }
  publish_file(tmp_, path_);
  finished_ = true;
  return written_;
}

}  // namespace residual
