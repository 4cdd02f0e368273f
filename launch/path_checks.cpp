#include "launch/path_checks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/zoo/zoo.h"

namespace residual {
namespace {

namespace fs = std::filesystem;

// The checkpoint magic of docs/checkpoint-format.md: bytes 0-15, "residual ckpt\n" and a
// NUL. (io/checkpoint_header.cpp checks the whole header; this only asks "is it one?".)
constexpr char kCheckpointMagic[16] = "residual ckpt\n";

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string not_regular(const std::string& path, mode_t mode) {
  const std::string kind = kind_of(mode);
  return "'" + path + "' is " + (kind == "not a regular file" ? "" : kind + ", ") +
         "not a regular file";
}

// Whether `path` is a run's `latest` pointer: a small file whose one line names a
// residual checkpoint beside it (docs/checkpoint-format.md).
bool is_checkpoint_pointer(const std::string& path, const struct stat& st) {
  if (fs::path(path).filename() != "latest" || st.st_size > 4096) return false;
  std::ifstream in(path);
  std::string name;
  std::getline(in, name);
  return !name.empty() && name.find('/') == std::string::npos &&
         is_residual_checkpoint((fs::path(path).parent_path() / name).string());
}

std::string parent_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

void check_input_file(const std::string& path, const std::string& what, int64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    RESIDUAL_CHECK(errno != ENOENT, what, " '", path, "' does not exist");
    fail("cannot read ", what, " '", path, "': ", std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) fail(what, " '", path, "' is a directory, not a file");
  RESIDUAL_CHECK(S_ISREG(st.st_mode), what, " ", not_regular(path, st.st_mode));
  RESIDUAL_CHECK(st.st_size <= max_bytes, what, " '", path, "' is ", st.st_size,
                 " bytes: more than the ",
                 max_bytes >= (1 << 20) ? std::to_string(max_bytes >> 20) + " MiB"
                                        : std::to_string(max_bytes) + " bytes",
                 " such a file may have");
  RESIDUAL_CHECK(::access(path.c_str(), R_OK) == 0, "cannot read ", what, " '", path,
                 "': ", std::strerror(errno));
}

void check_model_argument(const std::string& name_or_path) {
  if (is_zoo_model(name_or_path)) return;
  struct stat st {};
  if (::stat(name_or_path.c_str(), &st) != 0 && errno == ENOENT) return;
  check_input_file(name_or_path, "model file", kMaxModelFileBytes);
}

void check_checkpoint_argument(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  const std::string pointer = (fs::path(path) / "latest").string();
  if (::lstat(pointer.c_str(), &st) != 0) return;  // the resolver says what is missing
  check_input_file(pointer, "checkpoint pointer", 4096);
}

void check_output_file(const std::string& path, const std::string& option, bool make_directory) {
  RESIDUAL_CHECK(!path.empty(), option, ": no file name given");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    // Written as a new file renamed into place: a device or FIFO would be replaced, not
    // written to.
    RESIDUAL_CHECK(S_ISREG(st.st_mode), option, " ", not_regular(path, st.st_mode),
                   " (residual writes a new file and renames it into place)");
    RESIDUAL_CHECK(!is_residual_checkpoint(path), option, " '", path,
                   "' is a residual checkpoint: refusing to overwrite it (choose another file)");
    RESIDUAL_CHECK(!is_checkpoint_pointer(path, st), option, " '", path,
                   "' is the latest-checkpoint pointer of a run: refusing to overwrite it");
  } else if (errno != ENOENT) {
    fail(option, ": cannot use '", path, "': ", std::strerror(errno));
  }
  const std::string dir = parent_of(path);
  struct stat dir_st {};
  if (make_directory && ::stat(dir.c_str(), &dir_st) != 0 && errno == ENOENT) {
    // A directory still to be made (the metrics file inside a new checkpoint directory):
    // fine if its nearest existing ancestor is writable; made now, like the checkpoint
    // directory.
    check_output_dir(dir, option);
    std::error_code ec;
    fs::create_directories(dir, ec);
    RESIDUAL_CHECK(!ec, option, " '", path, "': cannot create the directory '", dir, "': ", ec.message());
  }
  RESIDUAL_CHECK(::stat(dir.c_str(), &dir_st) == 0, option, " '", path, "': the directory '", dir,
                 "' does not exist");
  RESIDUAL_CHECK(S_ISDIR(dir_st.st_mode), option, " '", path, "': '", dir, "' is not a directory");
  RESIDUAL_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, option, " '", path,
                 "': cannot write into the directory '", dir, "': ", std::strerror(errno));
}

void check_output_dir(const std::string& path, const std::string& option) {
  RESIDUAL_CHECK(!path.empty(), option, ": no directory given");
  // The path itself, or the nearest part of it that exists.
  fs::path existing = path;
  struct stat st {};
  while (::stat(existing.c_str(), &st) != 0) {
    RESIDUAL_CHECK(errno == ENOENT || errno == ENOTDIR, option, ": cannot use '", path,
                   "': ", std::strerror(errno));
    const fs::path parent = existing.parent_path();
    existing = parent.empty() || parent == existing ? fs::path(".") : parent;
  }
  RESIDUAL_CHECK(S_ISDIR(st.st_mode), option, " '", path, "': '", existing.string(),
                 "' is not a directory");
  RESIDUAL_CHECK(::access(existing.c_str(), W_OK | X_OK) == 0, option, " '", path,
                 "': cannot write into '", existing.string(), "': ", std::strerror(errno));
}

void check_not_input(const std::string& output, const std::string& output_option,
                     const std::string& input, const std::string& input_option) {
  std::error_code ec;
  RESIDUAL_CHECK(!fs::equivalent(output, input, ec), output_option, " '", output, "' is the ",
                 input_option, " file this command reads: refusing to overwrite it");
}

bool is_residual_checkpoint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  char head[sizeof(kCheckpointMagic)] = {};
  const ssize_t n = ::pread(fd, head, sizeof(head), 0);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof(head)) &&
         std::memcmp(head, kCheckpointMagic, sizeof(head)) == 0;
}

}  // namespace residual
