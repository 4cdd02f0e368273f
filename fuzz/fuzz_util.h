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
#include <vector>

#include "core/error.h"
#include "io/dataset.h"

namespace residual::fuzz {

// A directory under $TMPDIR made once per process (mkdtemp) and removed at a normal exit.
// The string is never destroyed, so the exit handler can still use it.
inline const std::string& scratch_dir() {
  static const std::string& dir = *[] {
    auto* path =
        new std::string((std::filesystem::temp_directory_path() / "residual-fuzz-XXXXXX").string());
    if (::mkdtemp(path->data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return path;
  }();
  static const int registered = std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
  (void)registered;
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

// RESIDUAL_FUZZ_VERBOSE=1 prints what each input did (opened, or rejected and why): for
// checking seeds and triaging saved inputs, not for fuzzing.
inline bool verbose() {
  static const bool on = std::getenv("RESIDUAL_FUZZ_VERBOSE") != nullptr;
  return on;
}

// Called with each Error a target catches.
inline void rejected(const Error& error) {
  if (verbose()) std::fprintf(stderr, "rejected: %s\n", error.what());
}

inline void remove_file(const std::string& path) { ::unlink(path.c_str()); }

// Reads every sample of an opened data set, checking what the readers promise: labels
// below num_classes(), pixel values of bytes (0..255), and an index past the end refused
// with an Error. A broken promise aborts: a finding.
inline void read_every_sample(const Dataset& data) {
  if (verbose()) std::fprintf(stderr, "opened: %s\n", data.description().c_str());
  std::vector<float> image(static_cast<size_t>(data.sample_shape().numel()));
  int32_t label = 0;
  for (int64_t i = 0; i < data.size(); ++i) {
    data.read(i, image.data(), &label);
    if (label < 0 || label >= data.num_classes()) std::abort();
    for (float v : image) {
      if (!(v >= 0 && v <= 255)) std::abort();
    }
  }
  (void)data.description();
  try {
    data.read(data.size(), image.data(), &label);
  } catch (const Error&) {
    return;
  }
  std::abort();
}

}  // namespace residual::fuzz
