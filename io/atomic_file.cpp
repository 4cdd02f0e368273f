#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBufferBytes = size_t{1} << 20;

uint32_t crc_update(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes at most 4 GiB - 1 at a time
    const uInt n = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, p, n));
    p += n;
    size -= n;
  }
  return crc;
}

// Writes all `size` bytes, retrying short writes; false with errno set on failure.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {  // no progress and no error: treat as a full device
      errno = ENOSPC;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The length and CRC-32 of the file at `path`, read from the device where possible:
// its cached pages (clean after the fsync) are dropped first.
bool read_back(const std::string& path, uint64_t& bytes, uint32_t& crc) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::vector<char> buffer(kBufferBytes);
  bytes = 0;
  crc = static_cast<uint32_t>(crc32(0L, Z_NULL, 0));
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    if (n == 0) break;
    crc = crc_update(crc, buffer.data(), static_cast<size_t>(n));
    bytes += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return true;
}

}  // namespace

std::string temp_path_for(const std::string& path) {
  RESIDUAL_CHECK(!path.empty(), "no output file given");
  return (fs::path(path).parent_path() / ("." + fs::path(path).filename().string() + ".tmp"))
      .string();
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string what)
    : path_(std::move(path)), tmp_(temp_path_for(path_)), what_(std::move(what)) {
  crc_ = static_cast<uint32_t>(crc32(0L, Z_NULL, 0));
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail_because(std::strerror(errno));
  buffer_.reserve(kBufferBytes);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (done_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(tmp_.c_str());
}

void AtomicFileWriter::fail_because(const std::string& reason) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  done_ = true;
  fail("cannot write ", what_, what_.empty() ? "" : " ", "'", path_, "': ", reason);
}

void AtomicFileWriter::flush_buffer() {
  if (buffer_.empty()) return;
  if (!write_all(fd_, buffer_.data(), buffer_.size())) fail_because(std::strerror(errno));
  buffer_.clear();
}

void AtomicFileWriter::write(const void* data, size_t size) {
  RESIDUAL_CHECK(!done_, "'", path_, "' was already written");
  crc_ = crc_update(crc_, data, size);
  bytes_ += size;
  if (buffer_.size() + size <= kBufferBytes) {
    buffer_.append(static_cast<const char*>(data), size);
    if (buffer_.size() == kBufferBytes) flush_buffer();
    return;
  }
  flush_buffer();
  if (size >= kBufferBytes) {
    if (!write_all(fd_, static_cast<const char*>(data), size)) fail_because(std::strerror(errno));
  } else {
    buffer_.assign(static_cast<const char*>(data), size);
  }
}

void AtomicFileWriter::commit() {
  RESIDUAL_CHECK(!done_, "'", path_, "' was already written");
  flush_buffer();
  if (::fsync(fd_) != 0) fail_because(std::string("fsync: ") + std::strerror(errno));
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) fail_because(std::string("close: ") + std::strerror(errno));
  // What the device holds now must be what was written: a short or lost write that no
  // call reported (a sparse file on a full tmpfs, a lying file system) is caught here.
  uint64_t bytes = 0;
  uint32_t crc = 0;
  if (!read_back(tmp_, bytes, crc)) {
    fail_because(std::string("reading it back: ") + std::strerror(errno));
  }
  if (bytes != bytes_) {
    fail_because("the file read back has " + std::to_string(bytes) + " bytes, " +
                 std::to_string(bytes_) + " were written");
  }
  if (crc != crc_) fail_because("the file read back differs from what was written (CRC-32)");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    fail_because(std::string("rename: ") + std::strerror(errno));
  }
  done_ = true;
  // The rename is durable once the directory is synced; the file itself is complete.
  const fs::path dir = fs::path(path_).parent_path();
  const std::string dir_name = dir.empty() ? "." : dir.string();
  const int dir_fd = ::open(dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int synced = dir_fd >= 0 ? ::fsync(dir_fd) : -1;
  const int saved = errno;
  if (dir_fd >= 0) ::close(dir_fd);
  RESIDUAL_CHECK(synced == 0, "cannot write ", what_, what_.empty() ? "" : " ", "'", path_,
                 "': fsync of its directory: ", std::strerror(saved));
}

void write_file_atomically(const std::string& path, const void* data, size_t size,
                           const std::string& what) {
  AtomicFileWriter out(path, what);
  out.write(data, size);
  out.commit();
}

}  // namespace residual
