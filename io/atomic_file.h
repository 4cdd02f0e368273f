#pragma once
// Files that are either complete or absent: everything residual writes (checkpoints,
// the latest pointer, predictions, plots) goes to a temporary file beside its target,
// which is flushed, fsync-ed and renamed over the target; then the directory is
// fsync-ed. A crash at any moment leaves the old file or the new one, never a mix.
#include <string>

namespace residual {

// ".NAME.tmp" in the target's directory (a rename within one file system is atomic).
std::string temp_path_for(const std::string& path);
// fsync(tmp), rename(tmp, path), fsync(directory). Removes tmp if the rename fails.
void publish_file(const std::string& tmp, const std::string& path);
// Writes `text` to `path` that way; an error names `path` and leaves no temporary file.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace residual
