#include "io/hdf5_util.h"

namespace residual {

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

}  // namespace residual
