#include "io/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace residual {
namespace {

class PreadFile : public ByteSource {
 public:
  explicit PreadFile(const std::string& path) : ByteSource(path) {
    check_regular_file(path);  // before open(): opening a FIFO blocks
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    RESIDUAL_CHECK(fd_ >= 0, path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail(path, ": not a regular file");
    }
    size_ = st.st_size;
  }
  ~PreadFile() override { ::close(fd_); }

  int64_t size() const override { return size_; }

  void read_at(int64_t offset, int64_t n, void* dst) const override {
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, out, static_cast<size_t>(n), offset);
      if (got < 0 && errno == EINTR) continue;
      RESIDUAL_CHECK(got >= 0, path(), ": read failed at byte ", offset, ": ",
                     std::strerror(errno));
      // The size was checked at open, so a short read means the file shrank since.
      RESIDUAL_CHECK(got > 0, path(), ": unexpected end of file at byte ", offset,
                     " (was the file truncated while open?)");
      out += got;
      offset += got;
      n -= got;
    }
  }

 private:
  int fd_ = -1;
  int64_t size_ = 0;
};

class MemoryFile : public ByteSource {
 public:
  MemoryFile(const std::string& path, std::vector<uint8_t> bytes)
      : ByteSource(path), bytes_(std::move(bytes)) {}

  int64_t size() const override { return static_cast<int64_t>(bytes_.size()); }

  void read_at(int64_t offset, int64_t n, void* dst) const override {
    RESIDUAL_CHECK(offset >= 0 && n >= 0 && offset + n <= size(), path(), ": bytes [", offset, ", ",
                   offset + n, ") are past the end of the ", size(), " decompressed bytes");
    std::memcpy(dst, bytes_.data() + offset, static_cast<size_t>(n));
  }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace

std::unique_ptr<ByteSource> open_file(const std::string& path) {
  return std::make_unique<PreadFile>(path);
}

std::unique_ptr<ByteSource> open_gzip_file(const std::string& path) {
  check_regular_file(path);  // gzread() of /dev/zero never ends, of a FIFO blocks
  gzFile gz = gzopen(path.c_str(), "rb");
  RESIDUAL_CHECK(gz != nullptr, path, ": cannot open: ", std::strerror(errno));
  gzbuffer(gz, 1 << 20);
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    const size_t used = bytes.size();
    bytes.resize(used + kChunk);
    const int got = gzread(gz, bytes.data() + used, kChunk);
    if (got < 0) {
      int code = 0;
      const std::string message = gzerror(gz, &code);
      gzclose(gz);
      fail(path, ": cannot decompress: ", message);
    }
    bytes.resize(used + static_cast<size_t>(got));
    if (got == 0) break;
  }
  // gzread() reports a stream cut short only through gzclose() / gzerror().
  int code = 0;
  const std::string message = gzerror(gz, &code);
  gzclose(gz);
  RESIDUAL_CHECK(code == Z_OK || code == Z_STREAM_END, path, ": cannot decompress: ", message);
  bytes.shrink_to_fit();
  return std::make_unique<MemoryFile>(path, std::move(bytes));
}

void check_regular_file(const std::string& path) {
  struct stat st {};
  RESIDUAL_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot open: ", std::strerror(errno));
  RESIDUAL_CHECK(S_ISREG(st.st_mode), path, ": not a regular file",
                 S_ISDIR(st.st_mode) ? " (a directory)" : S_ISFIFO(st.st_mode) ? " (a FIFO)" : "");
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace residual
