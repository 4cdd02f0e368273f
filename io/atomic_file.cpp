#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  RESIDUAL_CHECK(fd >= 0, "cannot open '", path, "' to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  RESIDUAL_CHECK(rc == 0, "fsync of '", path, "' failed");
}

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

}  // namespace

std::string temp_path_for(const std::string& path) {
  RESIDUAL_CHECK(!path.empty(), "no output file given");
  return (fs::path(path).parent_path() / ("." + fs::path(path).filename().string() + ".tmp"))
      .string();
}

void publish_file(const std::string& tmp, const std::string& path) {
  try {
    fsync_path(tmp, false);
    RESIDUAL_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot write '", path,
                   "': ", std::strerror(errno));
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
  const fs::path dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), true);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    RESIDUAL_CHECK(out, "cannot write '", path, "': ", std::strerror(errno));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      remove_quietly(tmp);
      fail("error writing '", path, "' (disk full?)");
    }
  }
  publish_file(tmp, path);
}

}  // namespace residual
