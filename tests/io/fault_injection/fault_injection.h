// A fault-injection shim for the writer tests: it wraps the libc calls that write files
// (open, write, fsync, close, rename, ...) and makes the Nth call of one kind fail, on
// files whose path contains a given string. Linked into a test program it is armed by
// residual_fault_arm(); LD_PRELOAD-ed into the residual CLI it is armed by environment
// variables (read once, at load):
//
//   RESIDUAL_FAULT_PATH    only files and directories whose path contains this string
//   RESIDUAL_FAULT_OP      open | write | fsync | close | rename
//   RESIDUAL_FAULT_NTH     the first call (1-based, counting only matching calls) to fail
//   RESIDUAL_FAULT_COUNT   how many calls fail from there on (default 1; 0: every later one)
//   RESIDUAL_FAULT_ERRNO   ENOSPC | EIO | EROFS | EFBIG | EDQUOT (default ENOSPC)
//   RESIDUAL_FAULT_MODE    fail (default) | short (the first failing write writes half and
//                          says so, later ones fail) | lie (a write reports success and
//                          writes nothing, as a broken file system would)
//   RESIDUAL_FAULT_REPORT  a file to which one line is appended per injected fault
//
// Counted calls: `open` counts opens with write intent (O_WRONLY, O_RDWR, O_CREAT, fopen
// "w"/"a"/"+") and mkdir; `write` counts write, pwrite, writev on files opened with write
// intent; `fsync` counts fsync/fdatasync on those files and on directories; `close` counts
// close/fclose of those files (the descriptor is closed, then the error is returned, as
// NFS does); `rename` counts renames whose new name matches.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

enum residual_fault_op {
  RESIDUAL_FAULT_NONE = 0,
  RESIDUAL_FAULT_OPEN,
  RESIDUAL_FAULT_WRITE,
  RESIDUAL_FAULT_FSYNC,
  RESIDUAL_FAULT_CLOSE,
  RESIDUAL_FAULT_RENAME
};
enum residual_fault_mode { RESIDUAL_FAULT_FAIL = 0, RESIDUAL_FAULT_SHORT, RESIDUAL_FAULT_LIE };

// Arms the shim in this process (replacing any earlier setting) and resets its counters.
void residual_fault_arm(const char* path_substring, enum residual_fault_op op, long nth,
                        long count, int error, enum residual_fault_mode mode);
void residual_fault_disarm(void);
// Faults injected since the last arm.
long residual_fault_injected(void);

#ifdef __cplusplus
}
#endif
