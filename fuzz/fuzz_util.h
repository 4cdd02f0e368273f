#pragma once
// Shared by the fuzz targets: one scratch directory per process, and whole-file writes.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace residual::fuzz {

// A directory under $TMPDIR made once per process (mkdtemp) and removed at a normal exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "residual-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return pattern;
  }();
  return dir;
}

// Writes bytes [data, data + size) to `path`, replacing it. Failing to write scratch
// files is the machine's problem, not a finding, but it must not pass silently.
inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  if (!ok) {
    std::perror(path.c_str());
    std::abort();
  }
}

inline void remove_file(const std::string& path) { ::unlink(path.c_str()); }

}  // namespace residual::fuzz
