#include "io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "io/atomic_file.h"
#include "io/checkpoint_header.h"
#include "io/hdf5_util.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "residual-checkpoint";

// --- writing -------------------------------------------------------------------------

class Writer {
 public:
  Writer(hid_t file, std::string path) : file_(file), path_(std::move(path)) {
    lcpl_ = Scoped(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    check(lcpl_.ok() && H5Pset_create_intermediate_group(lcpl_.get(), 1) >= 0, "/");
  }

  void tensor(const std::string& name, const Tensor& t) {
    std::vector<hsize_t> dims(t.shape().dims().begin(), t.shape().dims().end());
    Scoped space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    check(space.ok(), name);
    Scoped set(H5Dcreate2(file_, name.c_str(), H5T_IEEE_F32LE, space.get(), lcpl_.get(),
                          H5P_DEFAULT, H5P_DEFAULT),
               H5Dclose);
    check(set.ok(), name);
    const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
    check(H5Dwrite(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host.raw()) >= 0,
          name);
  }

  void text(const std::string& name, const std::string& value) {
    Scoped type = string_type(name, value);
    Scoped space(H5Screate(H5S_SCALAR), H5Sclose);
    check(space.ok(), name);
    Scoped set(H5Dcreate2(file_, name.c_str(), type.get(), space.get(), lcpl_.get(), H5P_DEFAULT,
                          H5P_DEFAULT),
               H5Dclose);
    check(set.ok(), name);
    check(H5Dwrite(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, value.c_str()) >= 0, name);
  }

  template <typename T>
  void attribute(const std::string& name, T value) {
    const hid_t file_type = std::is_floating_point_v<T> ? H5T_IEEE_F64LE
                            : std::is_unsigned_v<T>     ? H5T_STD_U64LE
                                                        : H5T_STD_I64LE;
    const hid_t mem_type = std::is_floating_point_v<T> ? H5T_NATIVE_DOUBLE
                           : std::is_unsigned_v<T>     ? H5T_NATIVE_UINT64
                                                       : H5T_NATIVE_INT64;
    Scoped space(H5Screate(H5S_SCALAR), H5Sclose);
    check(space.ok(), "@" + name);
    Scoped attr(H5Acreate2(file_, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
    check(attr.ok(), "@" + name);
    check(H5Awrite(attr.get(), mem_type, &value) >= 0, "@" + name);
  }

  void attribute(const std::string& name, const std::string& value) {
    Scoped type = string_type("@" + name, value);
    Scoped space(H5Screate(H5S_SCALAR), H5Sclose);
    check(space.ok(), "@" + name);
    Scoped attr(H5Acreate2(file_, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
    check(attr.ok(), "@" + name);
    check(H5Awrite(attr.get(), type.get(), value.c_str()) >= 0, "@" + name);
  }

 private:
  // A fixed-length string type as long as `value` (at least 1).
  Scoped string_type(const std::string& name, const std::string& value) {
    Scoped type(H5Tcopy(H5T_C_S1), H5Tclose);
    check(type.ok() && H5Tset_size(type.get(), std::max<size_t>(value.size(), 1)) >= 0, name);
    return type;
  }
  void check(bool ok, const std::string& what) {
    RESIDUAL_CHECK(ok, "cannot write checkpoint '", path_, "': HDF5 write of '", what, "' failed");
  }
  hid_t file_;
  std::string path_;
  Scoped lcpl_;
};

void write_tensors(Writer& w, const std::string& group,
                   const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, t] : tensors) w.tensor(group + "/" + name, t);
}

// --- reading -------------------------------------------------------------------------

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* links) {
  static_cast<std::vector<std::string>*>(links)->push_back(name);
  return 0;
}

class Reader {
 public:
  // `file_bytes` bounds every size the file claims: libhdf5 1.10 allocates and copies
  // whatever a damaged header says, so nothing larger than the file is asked of it.
  Reader(hid_t file, std::string path, int64_t file_bytes)
      : file_(file), path_(std::move(path)), file_bytes_(file_bytes) {}

  bool has(const std::string& name) const {
    return H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0;
  }

  std::string text(const std::string& name) const {
    Scoped set(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    RESIDUAL_CHECK(set.ok(), path_, ": missing dataset '", name, "'");
    Scoped type(H5Dget_type(set.get()), H5Tclose);
    RESIDUAL_CHECK(H5Tget_class(type.get()) == H5T_STRING && !H5Tis_variable_str(type.get()), path_,
                   ": dataset '", name, "' is not a fixed-length string");
    const size_t size = H5Tget_size(type.get());
    RESIDUAL_CHECK(size > 0 && static_cast<int64_t>(size) <= file_bytes_, path_, ": dataset '",
                   name, "' claims ", size, " bytes, more than the file holds (corrupt file?)");
    std::string value(size, '\0');
    RESIDUAL_CHECK(H5Dread(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, value.data()) >= 0,
                   path_, ": cannot read '", name, "' (corrupt file?)");
    return value.substr(0, value.find('\0'));
  }

  nlohmann::json json(const std::string& name) const {
    try {
      return nlohmann::json::parse(text(name));
    } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for 1e999
      fail(path_, ": dataset '", name, "' is not valid JSON (corrupt file?)");
    }
  }

  Tensor tensor(const std::string& name) const {
    Scoped set(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    RESIDUAL_CHECK(set.ok(), path_, ": missing dataset '", name, "'");
    Scoped space(H5Dget_space(set.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    RESIDUAL_CHECK(rank >= 0 && rank <= 8, path_, ": dataset '", name, "' has a bad rank");
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    Scoped type(H5Dget_type(set.get()), H5Tclose);
    RESIDUAL_CHECK(H5Tget_class(type.get()) == H5T_FLOAT, path_, ": dataset '", name,
                   "' is not floating point");
    std::vector<int64_t> shape(dims.begin(), dims.end());
    int64_t count = 1;
    for (int64_t d : shape) {
      RESIDUAL_CHECK(d >= 0 && d < (int64_t{1} << 34), path_, ": dataset '", name,
                     "' has a bad size");
      count *= d;
      RESIDUAL_CHECK(count < (int64_t{1} << 34), path_, ": dataset '", name, "' is too large");
    }
    RESIDUAL_CHECK(H5Tget_size(type.get()) == 4, path_, ": dataset '", name, "' is not float32");
    RESIDUAL_CHECK(count * 4 <= file_bytes_ &&
                       static_cast<int64_t>(H5Dget_storage_size(set.get())) == count * 4,
                   path_, ": dataset '", name, "' does not hold the ", count,
                   " values its shape promises (corrupt file?)");
    Tensor t = Tensor::empty(Shape(shape));
    RESIDUAL_CHECK(count == 0 || H5Dread(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                         t.raw()) >= 0,
                   path_, ": cannot read '", name, "' (truncated or corrupt file)");
    return t;
  }

  std::map<std::string, Tensor> tensors(const std::string& group) const {
    std::map<std::string, Tensor> out;
    if (!has(group)) return out;
    Scoped group_(H5Gopen2(file_, group.c_str(), H5P_DEFAULT), H5Gclose);
    RESIDUAL_CHECK(group_.ok(), path_, ": '", group, "' is not a group");
    // Every link below the group, recursively (H5Lvisit exists since HDF5 1.8); the
    // datasets among them are the tensors.
    std::vector<std::string> links;
    H5Lvisit(group_.get(), H5_INDEX_NAME, H5_ITER_INC, collect_link, &links);
    std::vector<std::string> names;
    for (const auto& link : links) {
      Scoped object(H5Oopen(group_.get(), link.c_str(), H5P_DEFAULT), H5Oclose);
      if (object.ok() && H5Iget_type(object.get()) == H5I_DATASET) names.push_back(link);
    }
    for (const auto& n : names) out[n] = tensor(group + "/" + n);
    return out;
  }

  template <typename T>
  T attribute(const std::string& name) const {
    RESIDUAL_CHECK(H5Aexists(file_, name.c_str()) > 0, path_, ": missing attribute '", name, "'");
    Scoped attr(H5Aopen(file_, name.c_str(), H5P_DEFAULT), H5Aclose);
    T value{};
    const hid_t mem_type = std::is_floating_point_v<T> ? H5T_NATIVE_DOUBLE
                           : std::is_unsigned_v<T>     ? H5T_NATIVE_UINT64
                                                       : H5T_NATIVE_INT64;
    RESIDUAL_CHECK(attr.ok() && H5Aread(attr.get(), mem_type, &value) >= 0, path_,
                   ": cannot read attribute '", name, "'");
    return value;
  }

  std::string string_attribute(const std::string& name) const {
    if (H5Aexists(file_, name.c_str()) <= 0) return "";
    Scoped attr(H5Aopen(file_, name.c_str(), H5P_DEFAULT), H5Aclose);
    Scoped type(H5Aget_type(attr.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0) return "";
    const size_t size = H5Tget_size(type.get());
    if (size == 0 || static_cast<int64_t>(size) > file_bytes_) return "";
    std::string value(size, '\0');
    if (H5Aread(attr.get(), type.get(), value.data()) < 0) return "";
    return value.substr(0, value.find('\0'));
  }

 private:
  hid_t file_;
  std::string path_;
  int64_t file_bytes_;
};

void hash_tensors(uint64_t& h, const std::string& group,
                  const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, t] : tensors) {
    const std::string key = group + "/" + name;
    h = fnv1a(h, key.data(), key.size());
    for (int64_t d : t.shape().dims()) h = fnv1a(h, &d, sizeof(d));
    const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
    h = fnv1a(h, host.raw(), host.nbytes());
  }
}

}  // namespace

uint64_t checkpoint_checksum(const Checkpoint& c) {
  uint64_t h = kFnv1aOffset;
  hash_tensors(h, "parameters", c.parameters);
  hash_tensors(h, "buffers", c.buffers);
  hash_tensors(h, "optimizer", c.optimizer_state);
  return h;
}

namespace {

// Memory the in-memory HDF5 file will need: the tensors, the JSON texts and some room for
// HDF5's own structures.
size_t expected_file_bytes(const Checkpoint& c) {
  size_t bytes = size_t{1} << 16;
  for (const auto* group : {&c.parameters, &c.buffers, &c.optimizer_state}) {
    for (const auto& [name, t] : *group) bytes += t.nbytes() + name.size() + 1024;
  }
  return bytes;
}

void write_fields(Writer& w, const Checkpoint& c) {
  w.attribute("format", std::string(kFormat));
  w.attribute("format_version", int64_t{kCheckpointFormatVersion});
  w.attribute("tensor_checksum", checkpoint_checksum(c));
  w.attribute("epoch", c.epoch);
  w.attribute("global_step", c.global_step);
  w.attribute("batch_in_epoch", c.batch_in_epoch);
  w.attribute("samples_in_epoch", c.samples_in_epoch);
  w.attribute("correct_in_epoch", c.correct_in_epoch);
  w.attribute("loss_sum_in_epoch", c.loss_sum_in_epoch);
  w.attribute("seed", c.seed);
  w.attribute("global_batch_size", c.global_batch_size);
  w.attribute("world_size", c.world_size);
  w.attribute("learning_rate", c.learning_rate);
  w.attribute("optimizer", c.optimizer);
  w.attribute("optimizer_steps", c.optimizer_steps);
  w.attribute("best_metric", c.best_metric);
  w.attribute("best_value", c.best_value);
  w.attribute("best_epoch", c.best_epoch);
  w.text("model_json", c.model.dump());
  w.text("config_json", c.config.dump());
  w.text("metrics_json", c.metrics.dump());
  write_tensors(w, "parameters", c.parameters);
  write_tensors(w, "buffers", c.buffers);
  write_tensors(w, "optimizer", c.optimizer_state);
}

}  // namespace

// The file is built in memory (libhdf5 never writes to disk, so a full disk cannot fail
// inside it), sealed with its header, then written, checked and renamed by AtomicFileWriter.
void write_checkpoint(const std::string& path, const Checkpoint& c) {
  std::vector<unsigned char> bytes;
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    silence_hdf5_errors();
    Scoped file = create_memory_file(expected_file_bytes(c), kCheckpointHeaderBytes);
    RESIDUAL_CHECK(file.ok(), "cannot write checkpoint '", path, "': HDF5 cannot create the file");
    {
      Writer w(file.get(), path);
      write_fields(w, c);
    }
    bytes = memory_file_image(file.get(), kCheckpointHeaderBytes, path);
    RESIDUAL_CHECK(file.close() >= 0, "cannot write checkpoint '", path, "': HDF5 close failed");
  }
  seal_checkpoint_image(bytes.data(), bytes.size());
  write_file_atomically(path, bytes.data(), bytes.size(), "checkpoint");
}

Checkpoint read_checkpoint(const std::string& path) {
  RESIDUAL_CHECK(fs::exists(path), "checkpoint '", path, "' does not exist");
  RESIDUAL_CHECK(fs::is_regular_file(path), "checkpoint '", path, "' is not a file");
  check_checkpoint_header(path);
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  silence_hdf5_errors();
  RESIDUAL_CHECK(H5Fis_hdf5(path.c_str()) > 0, "checkpoint '", path,
                 "' is not a readable HDF5 file (truncated or corrupt?)");
  Scoped file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  RESIDUAL_CHECK(file.ok(), "cannot open checkpoint '", path, "' (truncated or corrupt?)");
  Reader r(file.get(), path, static_cast<int64_t>(fs::file_size(path)));
  const std::string format = r.string_attribute("format");
  RESIDUAL_CHECK(format == kFormat, "'", path, "' is an HDF5 file but not a residual checkpoint",
                 format.empty() ? std::string() : " (format '" + format + "')");
  const auto version = r.attribute<int64_t>("format_version");
  RESIDUAL_CHECK(version <= kCheckpointFormatVersion, "checkpoint '", path, "' has format version ",
                 version, ", newer than this residual reads (", kCheckpointFormatVersion,
                 "): upgrade residual");
  RESIDUAL_CHECK(version >= 1, "checkpoint '", path, "' has a bad format version ", version);
  Checkpoint c;
  c.epoch = r.attribute<int64_t>("epoch");
  c.global_step = r.attribute<int64_t>("global_step");
  c.batch_in_epoch = r.attribute<int64_t>("batch_in_epoch");
  c.samples_in_epoch = r.attribute<int64_t>("samples_in_epoch");
  c.correct_in_epoch = r.attribute<int64_t>("correct_in_epoch");
  c.loss_sum_in_epoch = r.attribute<double>("loss_sum_in_epoch");
  c.seed = r.attribute<uint64_t>("seed");
  c.global_batch_size = r.attribute<int64_t>("global_batch_size");
  c.world_size = r.attribute<int64_t>("world_size");
  c.learning_rate = r.attribute<double>("learning_rate");
  c.optimizer = r.string_attribute("optimizer");
  c.optimizer_steps = r.attribute<int64_t>("optimizer_steps");
  c.best_metric = r.string_attribute("best_metric");
  c.best_value = r.attribute<double>("best_value");
  c.best_epoch = r.attribute<int64_t>("best_epoch");
  c.model = r.json("model_json");
  c.config = r.json("config_json");
  c.metrics = r.json("metrics_json");
  c.parameters = r.tensors("parameters");
  c.buffers = r.tensors("buffers");
  c.optimizer_state = r.tensors("optimizer");
  const auto stored = r.attribute<uint64_t>("tensor_checksum");
  RESIDUAL_CHECK(stored == checkpoint_checksum(c), "checkpoint '", path,
                 "': tensor checksum mismatch (the file is corrupt)");
  return c;
}

}  // namespace residual
