#pragma once
// Byte-level access shared by the file-format readers: positional reads that several
// loader threads may issue at once, and the big-endian integers of the IDX headers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace residual {

// Random-access bytes of one file. read_at() keeps no file position, so it is safe to
// call from several threads at once.
class ByteSource {
 public:
  explicit ByteSource(std::string path) : path_(std::move(path)) {}
  virtual ~ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  const std::string& path() const { return path_; }
  virtual int64_t size() const = 0;
  // Copies bytes [offset, offset + n) to dst; fails, naming the file, if they are not all
  // there.
  virtual void read_at(int64_t offset, int64_t n, void* dst) const = 0;

 private:
  std::string path_;
};

// The file read on demand with pread(); nothing is held in memory.
std::unique_ptr<ByteSource> open_file(const std::string& path);
// A gzip file, decompressed into memory at once: gzip streams cannot be read at random
// offsets, so this is only for small files (MNIST's are 10 MB unpacked).
std::unique_ptr<ByteSource> open_gzip_file(const std::string& path);

bool file_exists(const std::string& path);
// Throws an Error naming `path` unless it is a regular file (checked with stat, so a FIFO
// or device is refused without being opened: opening a FIFO blocks, /dev/zero never ends).
void check_regular_file(const std::string& path);

inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

inline void store_be32(uint32_t v, uint8_t* p) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace residual
