// The CUDA kernels of a CPU-only build: none. A CUDA tensor reaching an op then gets
// "built without CUDA" from the op call (ops/op.cpp).
#include "ops/kernel_registration.h"

namespace residual::ops {

void register_cuda_kernels() {}

}  // namespace residual::ops
