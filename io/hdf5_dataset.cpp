#include "io/hdf5_dataset.h"

#include <hdf5.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <type_traits>

#include "core/error.h"
#include "io/file_reader.h"
#include "io/hdf5_util.h"
#include "io/reader_util.h"

namespace residual {
namespace {

static_assert(std::is_same_v<hid_t, int64_t>, "Hdf5Dataset stores hid_t as int64_t");

constexpr int64_t kLabelChunk = 1 << 16;

std::string replace_split(std::string name, Split split) {
  const std::string key = "{split}";
  for (size_t at = name.find(key); at != std::string::npos; at = name.find(key, at)) {
    name.replace(at, key.size(), split_name(split));
  }
  return name;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* names) {
  auto* list = static_cast<std::string*>(names);
  *list += (list->empty() ? "" : ", ") + std::string(name);
  return 0;
}

hid_t open_named(hid_t file, const std::string& path, const std::string& name, Split split) {
  const hid_t dataset = H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0
                            ? H5Dopen2(file, name.c_str(), H5P_DEFAULT)
                            : H5I_INVALID_HID;
  if (dataset >= 0) return dataset;
  std::string names;
  H5Literate(file, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, collect_name, &names);
  fail(path, ": no dataset '", name, "' for the ", split_name(split),
       " split; the root holds: ", names.empty() ? "nothing" : names);
}

std::vector<hsize_t> dims_of(hid_t dataset) {
  const Scoped space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

std::string dims_str(const std::vector<hsize_t>& dims) {
  std::string out;
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? "x" : "") + std::to_string(dims[i]);
  return out.empty() ? "scalar" : out;
}

std::string type_name(hid_t type) {
  const size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return str_cat(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int", bits);
    case H5T_FLOAT:
      return str_cat("float", bits);
    case H5T_STRING:
      return "string";
    default:
      return "a non-numeric type";
  }
}

// Selects whole rows (indices along the first dimension) of a dataset's file space;
// consecutive rows become one block. `rows` is sorted and free of repeats.
void select_rows(hid_t space, const std::vector<int64_t>& rows) {
  std::vector<hsize_t> start(static_cast<size_t>(H5Sget_simple_extent_ndims(space)), 0);
  std::vector<hsize_t> count(start.size());
  H5Sget_simple_extent_dims(space, count.data(), nullptr);
  for (size_t i = 0; i < rows.size();) {
    size_t end = i + 1;
    while (end < rows.size() && rows[end] == rows[end - 1] + 1) ++end;
    start[0] = static_cast<hsize_t>(rows[i]);
    count[0] = end - i;
    H5Sselect_hyperslab(space, i == 0 ? H5S_SELECT_SET : H5S_SELECT_OR, start.data(), nullptr,
                        count.data(), nullptr);
    i = end;
  }
}

// Reads the given rows of a dataset, converted by HDF5 to `mem_type`, into dst.
void read_rows(hid_t dataset, hid_t mem_type, const std::vector<int64_t>& rows,
               int64_t values_per_row, void* dst, const std::string& path,
               const std::string& name) {
  const Scoped file_space(H5Dget_space(dataset), H5Sclose);
  select_rows(file_space.get(), rows);
  const hsize_t values = static_cast<hsize_t>(rows.size()) * values_per_row;
  const Scoped mem_space(H5Screate_simple(1, &values, nullptr), H5Sclose);
  RESIDUAL_CHECK(
      H5Dread(dataset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, dst) >= 0, path,
      ": cannot read dataset '", name, "'");
}

}  // namespace

Hdf5Dataset::Hdf5Dataset(const std::string& path, Split split, const DataOptions& options)
    : path_(path),
      split_(split),
      images_name_(replace_split(options.hdf5_images, split)),
      labels_name_(replace_split(options.hdf5_labels, split)) {
  RESIDUAL_CHECK(options.hdf5_layout == "nhwc" || options.hdf5_layout == "nchw", path,
                 ": unknown HDF5 image layout '", options.hdf5_layout, "': expected nhwc or nchw");
  RESIDUAL_CHECK(file_exists(path), path, ": no such file (hdf5:FILE expects an HDF5 file)");
  check_regular_file(path);  // libhdf5 would block on a FIFO
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  // Our errors say in one line what is wrong; HDF5's own stack dump would only bury it.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  RESIDUAL_CHECK(H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  RESIDUAL_CHECK(file_ >= 0, path, ": cannot open as HDF5");
  try {
    images_ = open_named(file_, path_, images_name_, split_);
    labels_ = open_named(file_, path_, labels_name_, split_);
    open_images(options.hdf5_layout);
    open_labels();
    count_classes();
  } catch (...) {
    if (labels_ >= 0) H5Dclose(labels_);
    if (images_ >= 0) H5Dclose(images_);
    H5Fclose(file_);
    throw;
  }
}

Hdf5Dataset::~Hdf5Dataset() {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Dclose(labels_);
  H5Dclose(images_);
  H5Fclose(file_);
}

void Hdf5Dataset::open_images(const std::string& layout) {
  const std::vector<hsize_t> dims = dims_of(images_);
  const std::string where = str_cat(path_, ": dataset '", images_name_, "'");
  RESIDUAL_CHECK(dims.size() == 4 || dims.size() == 3, where, " has rank ", dims.size(), " (",
                 dims_str(dims), "); expected 4 (",
                 layout == "nhwc" ? "N x H x W x C" : "N x C x H x W", " for layout ", layout,
                 ") or 3 (N x H x W)");
  for (hsize_t d : dims) {
    RESIDUAL_CHECK(d > 0, where, " has a zero dimension (", dims_str(dims), ")");
  }
  channels_first_ = layout == "nchw" && dims.size() == 4;
  count_ = static_cast<int64_t>(dims[0]);
  const size_t h = channels_first_ ? 2 : 1;
  height_ = static_cast<int64_t>(dims[h]);
  width_ = static_cast<int64_t>(dims[h + 1]);
  if (dims.size() == 4) channels_ = static_cast<int64_t>(dims[channels_first_ ? 1 : 3]);

  const Scoped type(H5Dget_type(images_), H5Tclose);
  const H5T_class_t type_class = H5Tget_class(type.get());
  const size_t bytes = H5Tget_size(type.get());
  const bool is_uint8 =
      type_class == H5T_INTEGER && bytes == 1 && H5Tget_sign(type.get()) == H5T_SGN_NONE;
  const bool is_float32 = type_class == H5T_FLOAT && bytes == 4;
  RESIDUAL_CHECK(is_uint8 || is_float32, where, " has unsupported element type ",
                 type_name(type.get()), "; expected uint8 or float32");
  uint8_pixels_ = is_uint8;
}

void Hdf5Dataset::open_labels() {
  const std::vector<hsize_t> dims = dims_of(labels_);
  const std::string where = str_cat(path_, ": dataset '", labels_name_, "'");
  RESIDUAL_CHECK(dims.size() == 1 || (dims.size() == 2 && dims[1] == 1), where, " has shape ",
                 dims_str(dims), "; expected N or N x 1 labels");
  RESIDUAL_CHECK(static_cast<int64_t>(dims[0]) == count_, where, " holds ", dims[0],
                 " labels but '", images_name_, "' holds ", count_, " images");
  const Scoped type(H5Dget_type(labels_), H5Tclose);
  RESIDUAL_CHECK(H5Tget_class(type.get()) == H5T_INTEGER, where, " has element type ",
                 type_name(type.get()), "; expected integer labels");
}

void Hdf5Dataset::count_classes() {
  const std::string where = str_cat(path_, ": dataset '", labels_name_, "'");
  int64_t declared = -1;
  if (H5Aexists(labels_, "num_classes") > 0) {
    const Scoped attribute(H5Aopen(labels_, "num_classes", H5P_DEFAULT), H5Aclose);
    const Scoped space(H5Aget_space(attribute.get()), H5Sclose);
    RESIDUAL_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1 &&
                       H5Aread(attribute.get(), H5T_NATIVE_INT64, &declared) >= 0 && declared > 0,
                   where, ": attribute num_classes must be one positive integer");
  }
  // Labels are read in chunks so that a large data set's labels need not fit in memory.
  int64_t largest = -1;
  std::vector<int64_t> rows;
  std::vector<int64_t> labels;
  for (int64_t begin = 0; begin < count_; begin += kLabelChunk) {
    const int64_t n = std::min(kLabelChunk, count_ - begin);
    rows.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) rows[i] = begin + i;
    labels.resize(rows.size());
    read_rows(labels_, H5T_NATIVE_INT64, rows, 1, labels.data(), path_, labels_name_);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t label = labels[i];
      const int64_t limit = declared > 0 ? declared : std::numeric_limits<int32_t>::max();
      const char* why = declared > 0 ? " (attribute num_classes)" : "";
      RESIDUAL_CHECK(label >= 0 && label < limit, where, ": label ", label, " of sample ",
                     begin + i, " is out of range: expected 0..", limit - 1, why);
      largest = std::max(largest, label);
    }
  }
  classes_ = declared > 0 ? declared : largest + 1;
}

void Hdf5Dataset::read(int64_t index, float* image, int32_t* label) const {
  read_batch(&index, 1, image, label);
}

void Hdf5Dataset::read_batch(const int64_t* indices, int64_t n, float* images,
                             int32_t* labels) const {
  for (int64_t i = 0; i < n; ++i) check_index(*this, indices[i]);
  // HDF5 returns a selection in file order, once per row: read the sorted distinct rows,
  // then place them in the order asked for.
  std::vector<int64_t> rows(indices, indices + n);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  const int64_t sample = height_ * width_ * channels_;
  // Pixels are read in the file's own type and converted here: HDF5's conversion to float
  // is several times slower, and it would hold the global lock meanwhile.
  const size_t values = rows.size() * static_cast<size_t>(sample);
  std::vector<uint8_t> bytes(uint8_pixels_ ? values : 0);
  std::vector<float> floats(uint8_pixels_ ? 0 : values);
  std::vector<int32_t> row_labels(rows.size());
  {
    const std::lock_guard<std::mutex> lock(hdf5_mutex());
    if (uint8_pixels_) {
      read_rows(images_, H5T_NATIVE_UINT8, rows, sample, bytes.data(), path_, images_name_);
    } else {
      read_rows(images_, H5T_NATIVE_FLOAT, rows, sample, floats.data(), path_, images_name_);
    }
    read_rows(labels_, H5T_NATIVE_INT32, rows, 1, row_labels.data(), path_, labels_name_);
  }
  const auto place = [&](const auto* src, float* dst) {
    if (channels_first_) {
      chw_to_hwc(src, channels_, height_, width_, dst);
    } else {
      to_float(src, sample, dst);
    }
  };
  for (int64_t i = 0; i < n; ++i) {
    const size_t row =
        static_cast<size_t>(std::lower_bound(rows.begin(), rows.end(), indices[i]) - rows.begin());
    const size_t offset = row * static_cast<size_t>(sample);
    if (uint8_pixels_) {
      place(bytes.data() + offset, images + i * sample);
    } else {
      place(floats.data() + offset, images + i * sample);
    }
    labels[i] = row_labels[row];
  }
}

std::string Hdf5Dataset::description() const { return describe("hdf5:" + path_, split_, *this); }

}  // namespace residual
