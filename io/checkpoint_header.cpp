// The checkpoint header in the HDF5 user block (docs/checkpoint-format.md): written after
// the HDF5 file is closed, checked with plain reads before libhdf5 parses anything.
#include "io/checkpoint_header.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/checkpoint.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[16] = "residual ckpt\n";  // 15 characters and a NUL
constexpr size_t kMagicOffset = 0, kLengthOffset = 16, kCrcOffset = 24, kVersionOffset = 28;
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

template <typename T>
T load_le(const unsigned char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

template <typename T>
void store_le(unsigned char* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

class File {
 public:
  File(const std::string& path, int flags) : fd_(::open(path.c_str(), flags)) {}
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// CRC-32 (zlib) of the file from `offset` to its end, read in 1 MiB pieces.
uint32_t crc_from(int fd, int64_t offset, int64_t length, const std::string& path) {
  std::vector<unsigned char> buffer(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  for (int64_t done = 0; done < length;) {
    const ssize_t n = ::pread(fd, buffer.data(),
                              static_cast<size_t>(std::min<int64_t>(length - done, buffer.size())),
                              offset + done);
    RESIDUAL_CHECK(n > 0, "cannot read '", path, "'");
    crc = crc32(crc, buffer.data(), static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

// Refuses, before any HDF5 call, a file that is not a complete, intact checkpoint.
void check_checkpoint_header(const std::string& path) {
  File file(path, O_RDONLY);
  RESIDUAL_CHECK(file.fd() >= 0, "cannot open checkpoint '", path, "'");
  const int64_t size = static_cast<int64_t>(fs::file_size(path));
  unsigned char header[kCheckpointHeaderBytes] = {};
  const ssize_t n = ::pread(file.fd(), header, sizeof(header), 0);
  const bool hdf5 = n >= 8 && std::memcmp(header, kHdf5Signature, 8) == 0;
  const bool ours = n >= 32 && std::memcmp(header + kMagicOffset, kMagic, sizeof(kMagic)) == 0;
  if (!ours) {
    RESIDUAL_CHECK(!hdf5, "'", path, "' is an HDF5 file but not a residual checkpoint");
    fail("'", path, "' is not a residual checkpoint",
         size < kCheckpointHeaderBytes ? " (too short: truncated?)"
                                       : " (no residual header: corrupt?)");
  }
  const auto version = load_le<uint32_t>(header + kVersionOffset);
  RESIDUAL_CHECK(version <= static_cast<uint32_t>(kCheckpointFormatVersion), "checkpoint '", path,
                 "' has format version ", version, ", newer than this residual reads (",
                 kCheckpointFormatVersion, "): upgrade residual");
  const auto length = load_le<uint64_t>(header + kLengthOffset);
  const int64_t payload = size - kCheckpointHeaderBytes;
  RESIDUAL_CHECK(static_cast<int64_t>(length) == payload, "checkpoint '", path,
                 "' is truncated or damaged: its header promises ", length,
                 " bytes after it, the file has ", payload);
  RESIDUAL_CHECK(crc_from(file.fd(), kCheckpointHeaderBytes, payload, path) ==
                     load_le<uint32_t>(header + kCrcOffset),
                 "checkpoint '", path, "' is corrupt (its CRC-32 does not match its contents)");
}

namespace {

// The 32 header bytes for `payload` bytes after the user block with CRC-32 `crc`.
void fill_header(unsigned char* header, uint64_t payload, uint32_t crc) {
  std::memset(header, 0, 32);
  std::memcpy(header + kMagicOffset, kMagic, sizeof(kMagic));
  store_le<uint64_t>(header + kLengthOffset, payload);
  store_le<uint32_t>(header + kCrcOffset, crc);
  store_le<uint32_t>(header + kVersionOffset, static_cast<uint32_t>(kCheckpointFormatVersion));
}

}  // namespace

void seal_checkpoint_image(unsigned char* file, size_t size) {
  RESIDUAL_CHECK(size > static_cast<size_t>(kCheckpointHeaderBytes), "a checkpoint image of ", size,
                 " bytes has no room for its header");
  const size_t payload = size - kCheckpointHeaderBytes;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < payload;) {  // zlib takes at most 4 GiB - 1 at a time
    const uInt n = static_cast<uInt>(std::min<size_t>(payload - done, size_t{1} << 30));
    crc = crc32(crc, file + kCheckpointHeaderBytes + done, n);
    done += n;
  }
  fill_header(file, payload, static_cast<uint32_t>(crc));
}

void seal_checkpoint_file(const std::string& path) {
  File file(path, O_RDWR);
  RESIDUAL_CHECK(file.fd() >= 0, "cannot open '", path, "' to seal it");
  const int64_t payload = static_cast<int64_t>(fs::file_size(path)) - kCheckpointHeaderBytes;
  RESIDUAL_CHECK(payload > 0, "'", path, "' has no room for a checkpoint header");
  unsigned char header[32];
  fill_header(header, static_cast<uint64_t>(payload),
              crc_from(file.fd(), kCheckpointHeaderBytes, payload, path));
  RESIDUAL_CHECK(
      ::pwrite(file.fd(), header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header)),
      "cannot write the header of '", path, "'");
}

}  // namespace residual
