#pragma once
// Shared by the io tests: a scratch directory, file writers and error-message checks.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/dataset.h"
#include "io/file_reader.h"

namespace residual::test {

// A fresh directory under $TMPDIR, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "residual-io-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// An IDX header: the magic number, then each dimension, all big-endian.
inline std::vector<uint8_t> idx_header(uint32_t magic, const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> bytes(4 * (1 + dims.size()));
  store_be32(magic, bytes.data());
  for (size_t i = 0; i < dims.size(); ++i) store_be32(dims[i], bytes.data() + 4 * (i + 1));
  return bytes;
}

inline std::vector<uint8_t> concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Expects `open` to throw residual::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn open, const std::vector<std::string>& parts) {
  try {
    open();
    ADD_FAILURE() << "expected an error mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos)
          << "message lacks '" << part << "': " << message;
    }
  }
}

// The project root, where data/ lies (CTest sets RESIDUAL_SOURCE_DIR).
inline std::string source_dir() {
  const char* dir = std::getenv("RESIDUAL_SOURCE_DIR");
  return dir != nullptr ? dir : RESIDUAL_TEST_SOURCE_DIR;
}

struct Samples {
  std::vector<float> images;
  std::vector<int32_t> labels;
};

// Every sample of a data set, read one at a time.
inline Samples read_all(const Dataset& data) {
  const int64_t stride = data.sample_shape().numel();
  Samples out;
  out.images.resize(static_cast<size_t>(data.size() * stride));
  out.labels.resize(static_cast<size_t>(data.size()));
  for (int64_t i = 0; i < data.size(); ++i) {
    data.read(i, out.images.data() + i * stride, out.labels.data() + i);
  }
  return out;
}

}  // namespace residual::test
