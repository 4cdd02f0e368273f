#pragma once
// Writes HDF5 files for the io tests with the C API, as a user's own tools would.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace residual::test {

class H5Writer {
 public:
  explicit H5Writer(const std::string& path)
      : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {
    EXPECT_GE(file_, 0) << path;
  }
  ~H5Writer() { H5Fclose(file_); }
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // A dataset of `type` in the file and in memory, holding `data` unless it is empty.
  template <typename T>
  void write(const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
             const std::vector<T>& data, int64_t num_classes = 0) {
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t set =
        H5Dcreate2(file_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(set, 0) << name;
    if (!data.empty()) {
      EXPECT_GE(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
    }
    if (num_classes > 0) {
      const hid_t scalar = H5Screate(H5S_SCALAR);
      const hid_t attribute =
          H5Acreate2(set, "num_classes", H5T_NATIVE_INT32, scalar, H5P_DEFAULT, H5P_DEFAULT);
      const int32_t classes = static_cast<int32_t>(num_classes);
      EXPECT_GE(H5Awrite(attribute, H5T_NATIVE_INT32, &classes), 0);
      H5Aclose(attribute);
      H5Sclose(scalar);
    }
    H5Dclose(set);
    H5Sclose(space);
  }

 private:
  hid_t file_;
};

}  // namespace residual::test
