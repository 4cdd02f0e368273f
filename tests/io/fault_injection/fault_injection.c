// The fault-injection shim described in fault_injection.h. Every wrapper forwards to the
// next definition of the function (libc's) through dlsym(RTLD_NEXT), so the same object
// works linked into a test program and LD_PRELOAD-ed into another one.
#undef _FORTIFY_SOURCE  // the wrappers define open() & co., which fortify turns into inlines
#define _GNU_SOURCE
#include "fault_injection.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_FDS 65536

enum { FD_UNTRACKED = 0, FD_FILE = 1, FD_DIR = 2 };

static char path_substring[4096];
static int armed_op = RESIDUAL_FAULT_NONE;
static long armed_nth = 1, armed_count = 1;
static int armed_errno = ENOSPC;
static int armed_mode = RESIDUAL_FAULT_FAIL;
static char report_path[4096];
static long calls, injected;            // atomics (__atomic builtins)
static unsigned char fd_kind[MAX_FDS];  // of matching descriptors only

#define REAL(name) real_##name
#define DECLARE_REAL(ret, name, ...)                                              \
  static ret (*real_##name)(__VA_ARGS__);                                         \
  static void load_##name(void) {                                                 \
    if (!real_##name) real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name); \
  }

DECLARE_REAL(int, open, const char*, int, ...)
DECLARE_REAL(int, open64, const char*, int, ...)
DECLARE_REAL(int, openat, int, const char*, int, ...)
DECLARE_REAL(int, openat64, int, const char*, int, ...)
DECLARE_REAL(int, __open_2, const char*, int)
DECLARE_REAL(int, __open64_2, const char*, int)
DECLARE_REAL(int, creat, const char*, mode_t)
DECLARE_REAL(int, creat64, const char*, mode_t)
DECLARE_REAL(FILE*, fopen, const char*, const char*)
DECLARE_REAL(FILE*, fopen64, const char*, const char*)
DECLARE_REAL(int, fclose, FILE*)
DECLARE_REAL(int, mkdir, const char*, mode_t)
DECLARE_REAL(ssize_t, write, int, const void*, size_t)
DECLARE_REAL(ssize_t, pwrite, int, const void*, size_t, off_t)
DECLARE_REAL(ssize_t, pwrite64, int, const void*, size_t, off_t)
DECLARE_REAL(ssize_t, writev, int, const struct iovec*, int)
DECLARE_REAL(int, fsync, int)
DECLARE_REAL(int, fdatasync, int)
DECLARE_REAL(int, close, int)
DECLARE_REAL(int, rename, const char*, const char*)

static int parse_errno(const char* name) {
  if (!name || !*name) return ENOSPC;
  if (!strcmp(name, "ENOSPC")) return ENOSPC;
  if (!strcmp(name, "EIO")) return EIO;
  if (!strcmp(name, "EROFS")) return EROFS;
  if (!strcmp(name, "EFBIG")) return EFBIG;
  if (!strcmp(name, "EDQUOT")) return EDQUOT;
  return atoi(name) > 0 ? atoi(name) : ENOSPC;
}

static int parse_op(const char* name) {
  if (!name) return RESIDUAL_FAULT_NONE;
  if (!strcmp(name, "open")) return RESIDUAL_FAULT_OPEN;
  if (!strcmp(name, "write")) return RESIDUAL_FAULT_WRITE;
  if (!strcmp(name, "fsync")) return RESIDUAL_FAULT_FSYNC;
  if (!strcmp(name, "close")) return RESIDUAL_FAULT_CLOSE;
  if (!strcmp(name, "rename")) return RESIDUAL_FAULT_RENAME;
  return RESIDUAL_FAULT_NONE;
}

static int parse_mode(const char* name) {
  if (name && !strcmp(name, "short")) return RESIDUAL_FAULT_SHORT;
  if (name && !strcmp(name, "lie")) return RESIDUAL_FAULT_LIE;
  return RESIDUAL_FAULT_FAIL;
}

static void copy_string(char* to, const char* from, size_t size) {
  to[0] = '\0';
  if (from) {
    strncpy(to, from, size - 1);
    to[size - 1] = '\0';
  }
}

__attribute__((constructor)) static void configure_from_environment(void) {
  const char* op = getenv("RESIDUAL_FAULT_OP");
  const char* path = getenv("RESIDUAL_FAULT_PATH");
  if (!op || !path || !*path) return;
  const char* nth = getenv("RESIDUAL_FAULT_NTH");
  const char* count = getenv("RESIDUAL_FAULT_COUNT");
  copy_string(report_path, getenv("RESIDUAL_FAULT_REPORT"), sizeof(report_path));
  residual_fault_arm(path, (enum residual_fault_op)parse_op(op), nth ? atol(nth) : 1,
                     count ? atol(count) : 1, parse_errno(getenv("RESIDUAL_FAULT_ERRNO")),
                     (enum residual_fault_mode)parse_mode(getenv("RESIDUAL_FAULT_MODE")));
}

EXPORT void residual_fault_arm(const char* path, enum residual_fault_op op, long nth, long count,
                               int error, enum residual_fault_mode mode) {
  copy_string(path_substring, path, sizeof(path_substring));
  armed_nth = nth;
  armed_count = count;
  armed_errno = error;
  armed_mode = mode;
  memset(fd_kind, 0, sizeof(fd_kind));
  __atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&injected, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&armed_op, (int)op, __ATOMIC_SEQ_CST);
}

EXPORT void residual_fault_disarm(void) {
  __atomic_store_n(&armed_op, RESIDUAL_FAULT_NONE, __ATOMIC_SEQ_CST);
}

EXPORT long residual_fault_injected(void) { return __atomic_load_n(&injected, __ATOMIC_SEQ_CST); }

static int armed(void) {
  return __atomic_load_n(&armed_op, __ATOMIC_SEQ_CST) != RESIDUAL_FAULT_NONE;
}

static int matches(const char* path) {
  return armed() && path && path_substring[0] && strstr(path, path_substring) != NULL;
}

static int kind_of(int fd) {
  return fd >= 0 && fd < MAX_FDS ? __atomic_load_n(&fd_kind[fd], __ATOMIC_SEQ_CST) : FD_UNTRACKED;
}

static void set_kind(int fd, int kind) {
  if (fd >= 0 && fd < MAX_FDS)
    __atomic_store_n(&fd_kind[fd], (unsigned char)kind, __ATOMIC_SEQ_CST);
}

static void report(const char* what) {
  if (!report_path[0]) return;
  load_open();
  load_write();
  load_close();
  const int fd = REAL(open)(report_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char line[128];
  const int n =
      snprintf(line, sizeof(line), "%s %ld\n", what, __atomic_load_n(&calls, __ATOMIC_SEQ_CST));
  if (n > 0) (void)!REAL(write)(fd, line, (size_t)n);
  REAL(close)(fd);
}

// Counts a call of kind `op`; nonzero (and errno set for the caller) when it must fail.
// *first is set when this is the first injected fault (used by the short mode).
static int should_fail(int op, const char* what, int* first) {
  if (__atomic_load_n(&armed_op, __ATOMIC_SEQ_CST) != op) return 0;
  const long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
  if (n < armed_nth || (armed_count > 0 && n >= armed_nth + armed_count)) return 0;
  if (first) *first = n == armed_nth;
  __atomic_add_fetch(&injected, 1, __ATOMIC_SEQ_CST);
  report(what);
  return 1;
}

static int write_intent(int flags) {
  return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) != 0;
}

static void track(int fd, const char* path, int flags) {
  if (fd < 0) return;
  set_kind(fd, FD_UNTRACKED);
  if (!matches(path)) return;
  struct stat st;
  if (write_intent(flags)) {
    set_kind(fd, FD_FILE);
  } else if ((flags & O_DIRECTORY) || (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))) {
    set_kind(fd, FD_DIR);
  }
}

static int refuse_open(const char* path, int flags) {
  if (!matches(path) || !write_intent(flags)) return 0;
  if (!should_fail(RESIDUAL_FAULT_OPEN, "open", NULL)) return 0;
  errno = armed_errno;
  return 1;
}

#define OPEN_WRAPPER(name, ...)                                   \
  EXPORT int name(__VA_ARGS__ const char* path, int flags, ...) { \
    mode_t mode = 0;                                              \
    if (flags & (O_CREAT | __O_TMPFILE)) {                        \
      va_list args;                                               \
      va_start(args, flags);                                      \
      mode = (mode_t)va_arg(args, int);                           \
      va_end(args);                                               \
    }                                                             \
    if (refuse_open(path, flags)) return -1;                      \
    load_##name();                                                \
    const int fd = REAL(name)(OPEN_DIRFD path, flags, mode);      \
    track(fd, path, flags);                                       \
    return fd;                                                    \
  }

#define OPEN_DIRFD
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)
#undef OPEN_DIRFD
#define OPEN_DIRFD dirfd,
OPEN_WRAPPER(openat, int dirfd, )
OPEN_WRAPPER(openat64, int dirfd, )
#undef OPEN_DIRFD

#define OPEN2_WRAPPER(name)                      \
  EXPORT int name(const char* path, int flags) { \
    if (refuse_open(path, flags)) return -1;     \
    load_##name();                               \
    const int fd = REAL(name)(path, flags);      \
    track(fd, path, flags);                      \
    return fd;                                   \
  }
OPEN2_WRAPPER(__open_2)
OPEN2_WRAPPER(__open64_2)

#define CREAT_WRAPPER(name)                               \
  EXPORT int name(const char* path, mode_t mode) {        \
    if (refuse_open(path, O_CREAT | O_WRONLY)) return -1; \
    load_##name();                                        \
    const int fd = REAL(name)(path, mode);                \
    track(fd, path, O_CREAT | O_WRONLY);                  \
    return fd;                                            \
  }
CREAT_WRAPPER(creat)
CREAT_WRAPPER(creat64)

static int fopen_flags(const char* mode) {
  if (!mode) return O_RDONLY;
  if (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+')) return O_WRONLY | O_CREAT;
  return O_RDONLY;
}

#define FOPEN_WRAPPER(name)                                \
  EXPORT FILE* name(const char* path, const char* mode) {  \
    if (refuse_open(path, fopen_flags(mode))) return NULL; \
    load_##name();                                         \
    FILE* f = REAL(name)(path, mode);                      \
    if (f) track(fileno(f), path, fopen_flags(mode));      \
    return f;                                              \
  }
FOPEN_WRAPPER(fopen)
FOPEN_WRAPPER(fopen64)

EXPORT int mkdir(const char* path, mode_t mode) {
  if (refuse_open(path, O_CREAT)) return -1;
  load_mkdir();
  return REAL(mkdir)(path, mode);
}

// Decides what a write of `n` bytes on `fd` does: 0 = pass through, 1 = fail (errno set),
// 2 = write only `*short_n` bytes, 3 = pretend (write nothing, report n).
static int write_fault(int fd, size_t n, size_t* short_n) {
  if (kind_of(fd) != FD_FILE) return 0;
  int first = 0;
  if (!should_fail(RESIDUAL_FAULT_WRITE, "write", &first)) return 0;
  if (armed_mode == RESIDUAL_FAULT_LIE) return 3;
  if (armed_mode == RESIDUAL_FAULT_SHORT && first && n > 1) {
    *short_n = n / 2;
    return 2;
  }
  errno = armed_errno;
  return 1;
}

EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  load_write();
  size_t short_n = 0;
  switch (write_fault(fd, n, &short_n)) {
    case 1:
      return -1;
    case 2:
      return REAL(write)(fd, buf, short_n);
    case 3:
      return lseek(fd, (off_t)n, SEEK_CUR) < 0 ? -1 : (ssize_t)n;
    default:
      return REAL(write)(fd, buf, n);
  }
}

#define PWRITE_WRAPPER(name)                                             \
  EXPORT ssize_t name(int fd, const void* buf, size_t n, off_t offset) { \
    load_##name();                                                       \
    size_t short_n = 0;                                                  \
    switch (write_fault(fd, n, &short_n)) {                              \
      case 1:                                                            \
        return -1;                                                       \
      case 2:                                                            \
        return REAL(name)(fd, buf, short_n, offset);                     \
      case 3:                                                            \
        return (ssize_t)n;                                               \
      default:                                                           \
        return REAL(name)(fd, buf, n, offset);                           \
    }                                                                    \
  }
PWRITE_WRAPPER(pwrite)
PWRITE_WRAPPER(pwrite64)

EXPORT ssize_t writev(int fd, const struct iovec* iov, int count) {
  load_writev();
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  size_t short_n = 0;
  switch (write_fault(fd, total, &short_n)) {
    case 1:
      return -1;
    case 2:
      return count > 0 ? REAL(write)(fd, iov[0].iov_base,
                                     iov[0].iov_len < short_n ? iov[0].iov_len : short_n)
                       : 0;
    case 3:
      return lseek(fd, (off_t)total, SEEK_CUR) < 0 ? -1 : (ssize_t)total;
    default:
      return REAL(writev)(fd, iov, count);
  }
}

static int sync_fault(int fd) {
  if (kind_of(fd) == FD_UNTRACKED || !should_fail(RESIDUAL_FAULT_FSYNC, "fsync", NULL)) return 0;
  errno = armed_errno;
  return 1;
}

#define SYNC_WRAPPER(name)         \
  EXPORT int name(int fd) {        \
    if (sync_fault(fd)) return -1; \
    load_##name();                 \
    return REAL(name)(fd);         \
  }
SYNC_WRAPPER(fsync)
SYNC_WRAPPER(fdatasync)

EXPORT int close(int fd) {
  const int fail = kind_of(fd) == FD_FILE && should_fail(RESIDUAL_FAULT_CLOSE, "close", NULL);
  set_kind(fd, FD_UNTRACKED);
  load_close();
  const int rc = REAL(close)(fd);
  if (fail) {
    errno = armed_errno;
    return -1;
  }
  return rc;
}

EXPORT int fclose(FILE* f) {
  const int fd = f ? fileno(f) : -1;
  const int fail = kind_of(fd) == FD_FILE && should_fail(RESIDUAL_FAULT_CLOSE, "close", NULL);
  set_kind(fd, FD_UNTRACKED);
  load_fclose();
  const int rc = REAL(fclose)(f);
  if (fail) {
    errno = armed_errno;
    return EOF;
  }
  return rc;
}

EXPORT int rename(const char* from, const char* to) {
  if (matches(to) && should_fail(RESIDUAL_FAULT_RENAME, "rename", NULL)) {
    errno = armed_errno;
    return -1;
  }
  load_rename();
  return REAL(rename)(from, to);
}
