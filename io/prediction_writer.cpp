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
  // Without modification times, the same predictions give the same bytes.
  Scoped create(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  RESIDUAL_CHECK(create.ok() && H5Pset_obj_track_times(create.get(), 0) >= 0,
                 "cannot create dataset '", name, "'");
  Scoped set(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, create.get(), H5P_DEFAULT),
             H5Dclose);
  RESIDUAL_CHECK(space.ok() && set.ok(), "cannot create dataset '", name, "'");
}

// Writes rows [first, first + n) of a dataset whose row length is `width` (0: 1-D).
void write_rows(hid_t file, const char* name, hid_t mem_type, const void* data, int64_t first,
                int64_t n, int64_t width) {
  Scoped set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  Scoped space(H5Dget_space(set.get()), H5Sclose);
  RESIDUAL_CHECK(set.ok() && space.ok(), "cannot open dataset '", name, "'");
  std::vector<hsize_t> start{static_cast<hsize_t>(first)}, count{static_cast<hsize_t>(n)};
  if (width > 0) {
    start.push_back(0);
    count.push_back(static_cast<hsize_t>(width));
  }
  Scoped memory(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  RESIDUAL_CHECK(
      H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                          nullptr) >= 0 &&
          memory.ok() &&
          H5Dwrite(set.get(), mem_type, memory.get(), space.get(), H5P_DEFAULT, data) >= 0,
      "cannot write dataset '", name, "'");
}

}  // namespace

PredictionWriter::PredictionWriter(const std::string& path, int64_t samples, int64_t classes)
    : path_(path), samples_(samples), classes_(classes), hdf5_(is_hdf5_path(path)) {
  // The temporary file is created at once: a directory that cannot take it fails here,
  // before any prediction is computed.
  out_ = std::make_unique<AtomicFileWriter>(path);
  if (hdf5_) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    silence_hdf5_errors();
    const size_t bytes = static_cast<size_t>(samples) * static_cast<size_t>(classes + 2) * 4;
    Scoped file = create_memory_file(bytes + (size_t{1} << 16));
    RESIDUAL_CHECK(file.ok(), "cannot write '", path, "': HDF5 cannot create the file");
    create_dataset(file.get(), "probabilities", H5T_IEEE_F32LE,
                   {static_cast<hsize_t>(samples), static_cast<hsize_t>(classes)});
    create_dataset(file.get(), "predicted", H5T_STD_I32LE, {static_cast<hsize_t>(samples)});
    create_dataset(file.get(), "labels", H5T_STD_I32LE, {static_cast<hsize_t>(samples)});
    file_ = file.release();  // closed by the destructor from here on
  } else {
    std::string header = "index,label,predicted";
    for (int64_t k = 0; k < classes; ++k) header += ",p" + std::to_string(k);
    out_->write(header + "\n");
  }
}

PredictionWriter::~PredictionWriter() {
  if (file_ >= 0) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Fclose(file_);
  }
  // out_, unless committed, removes its temporary file.
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
    std::string text;
    char buf[32];
    for (int64_t i = 0; i < n; ++i) {
      text += std::to_string(written_ + i) + "," + std::to_string(labels[i]) + "," +
              std::to_string(predicted[i]);
      for (int64_t k = 0; k < classes_; ++k) {
        std::snprintf(buf, sizeof(buf), ",%.6g", p[i * classes_ + k]);
        text += buf;
      }
      text += "\n";
    }
    out_->write(text);
  }
  written_ += n;
}

int64_t PredictionWriter::finish() {
  if (hdf5_) {
    std::vector<unsigned char> bytes;
    {
      std::lock_guard<std::mutex> lock(hdf5_mutex());
      bytes = memory_file_image(file_, 0, path_);
      const herr_t closed = H5Fclose(file_);
      file_ = -1;
      RESIDUAL_CHECK(closed >= 0, "cannot write '", path_, "': HDF5 close failed");
    }
    out_->write(bytes.data(), bytes.size());
  }
  out_->commit();
  return written_;
}

}  // namespace residual
