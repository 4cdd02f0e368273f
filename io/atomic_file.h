#pragma once
// Files that are either complete or absent: everything residual writes whole (checkpoints,
// the latest pointer, predictions, plots, exported models) goes to a temporary file beside
// its target. Every write, the fsync and the close are checked; the file is then read back
// (its length and CRC-32 must match what was written) and only then renamed over the
// target, and the directory is fsync-ed. Any failure removes the temporary file, leaves
// the target as it was, and throws one Error naming the target and the cause
// ("cannot write checkpoint 'runs/a/ckpt-...h5': No space left on device").
#include <cstddef>
#include <cstdint>
#include <string>

namespace residual {

// ".NAME.tmp" in the target's directory (a rename within one file system is atomic).
std::string temp_path_for(const std::string& path);

class AtomicFileWriter {
 public:
  // Creates the temporary file for `path`. `what` describes the file in errors
  // ("checkpoint" gives "cannot write checkpoint '...'"); empty: just the path.
  explicit AtomicFileWriter(std::string path, std::string what = "");
  // Without commit(): closes and removes the temporary file; `path` is untouched.
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and closes the temporary file, reads it back and checks it, renames it
  // over the target and fsyncs the directory. A failure after the rename (the directory
  // sync) leaves the new, complete file in place and still throws.
  void commit();

 private:
  [[noreturn]] void fail_because(const std::string& reason);
  void flush_buffer();

  std::string path_, tmp_, what_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t bytes_ = 0;
  uint32_t crc_ = 0;
  bool done_ = false;  // committed, or failed and cleaned up
};

// Writes `size` bytes to `path` through an AtomicFileWriter.
void write_file_atomically(const std::string& path, const void* data, size_t size,
                           const std::string& what = "");
inline void write_file_atomically(const std::string& path, const std::string& text,
                                  const std::string& what = "") {
  write_file_atomically(path, text.data(), text.size(), what);
}

}  // namespace residual
