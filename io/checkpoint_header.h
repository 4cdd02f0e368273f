#pragma once
#include <string>

namespace residual {

// Throws an Error naming `path` unless it starts with residual's checkpoint header and
// its length and CRC-32 match the rest of the file (no HDF5 call is made).
void check_checkpoint_header(const std::string& path);

}  // namespace residual
