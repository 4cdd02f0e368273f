#pragma once
// Shared by every HDF5 user in the process: Debian's libhdf5 is built without thread
// safety, so all HDF5 calls go through one lock; handles close at the end of a scope.
#include <hdf5.h>

#include <mutex>

namespace residual {

std::mutex& hdf5_mutex();

// Closes an HDF5 id (file, group, dataset, dataspace, datatype, attribute, property list)
// with the given close function at the end of a scope.
class Scoped {
 public:
  Scoped(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Scoped() {
    if (id_ >= 0) close_(id_);
  }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// Turns off HDF5's own error printing (our errors are one line of our own).
void silence_hdf5_errors();

}  // namespace residual
