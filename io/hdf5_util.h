#pragma once
// Shared by every HDF5 user in the process: Debian's libhdf5 is built without thread
// safety, so all HDF5 calls go through one lock; handles close at the end of a scope.
#include <hdf5.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace residual {

std::mutex& hdf5_mutex();

// Closes an HDF5 id (file, group, dataset, dataspace, datatype, attribute, property list)
// with the given close function at the end of a scope, on every path out of it (an
// exception included), so no HDF5 object is left open when an error propagates.
class Scoped {
 public:
  Scoped() = default;
  Scoped(hid_t id, herr_t (*close_fn)(hid_t)) : id_(id), close_(close_fn) {}
  ~Scoped() { close(); }
  Scoped(Scoped&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Scoped& operator=(Scoped&& other) noexcept {
    if (this != &other) {
      close();
      id_ = other.id_;
      close_ = other.close_;
      other.id_ = -1;
    }
    return *this;
  }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  // Closes now; the close function's result (0 when nothing was open).
  herr_t close() {
    if (id_ < 0 || close_ == nullptr) return 0;
    const herr_t rc = close_(id_);
    id_ = -1;
    return rc;
  }
  // Gives the id up: the caller closes it.
  hid_t release() {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Turns off HDF5's own error printing (our errors are one line of our own).
void silence_hdf5_errors();

// An HDF5 file created in memory (the core driver without a backing store), for writing:
// libhdf5 never touches the disk, so a full disk or an I/O error can never fail inside it
// (libhdf5 1.10 crashes at exit after a failed flush, H5F__close_cb). The caller takes
// its bytes with memory_file_image and writes them with io/atomic_file. `expected_bytes`
// sizes the memory it grows by; `user_block` reserves that many bytes in front (a
// multiple of 512, or 0). Not ok() when HDF5 refuses. Call with hdf5_mutex() held.
Scoped create_memory_file(size_t expected_bytes, size_t user_block = 0);
// The whole file: `user_block` zero bytes, then what HDF5 holds (flushed first). An Error
// naming `path` if HDF5 fails. Call with hdf5_mutex() held.
std::vector<unsigned char> memory_file_image(hid_t file, size_t user_block,
                                             const std::string& path);

}  // namespace residual
