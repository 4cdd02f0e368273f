#include "io/hdf5_util.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "core/error.h"

namespace residual {

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Scoped create_memory_file(size_t expected_bytes, size_t user_block) {
  Scoped access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  Scoped create(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  if (!access.ok() || !create.ok()) return Scoped();
  const size_t increment = std::max<size_t>(expected_bytes, size_t{1} << 16);
  if (H5Pset_fapl_core(access.get(), increment, /*backing_store=*/0) < 0) return Scoped();
  if (user_block > 0 && H5Pset_userblock(create.get(), user_block) < 0) return Scoped();
  // No modification times in the root group: the same content gives the same bytes.
  if (H5Pset_obj_track_times(create.get(), 0) < 0) return Scoped();
  // H5Fcreate first tries to open an existing file of that name (the core driver would
  // read all of it into memory), so the name is one that cannot exist: /dev/null is not a
  // directory. The number keeps names of files open at the same time apart.
  static std::atomic<uint64_t> counter{0};
  const std::string name = "/dev/null/residual-in-memory-" + std::to_string(counter++);
  return Scoped(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, create.get(), access.get()), H5Fclose);
}

std::vector<unsigned char> memory_file_image(hid_t file, size_t user_block,
                                             const std::string& path) {
  // The superblock (its end-of-file address) is only current after a flush.
  RESIDUAL_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0, "cannot write '", path,
                 "': HDF5 could not flush its in-memory file");
  const ssize_t size = H5Fget_file_image(file, nullptr, 0);
  RESIDUAL_CHECK(size > 0, "cannot write '", path, "': HDF5 gave no file image");
  // The image starts at the superblock; a file with a user block expects it in front.
  std::vector<unsigned char> bytes(user_block + static_cast<size_t>(size));
  RESIDUAL_CHECK(
      H5Fget_file_image(file, bytes.data() + user_block, static_cast<size_t>(size)) == size,
      "cannot write '", path, "': HDF5 gave an incomplete file image");
  return bytes;
}

}  // namespace residual
