// Registers every CUDA kernel with its op: the CUDA backend's one list. Host code (no
// CUDA headers): each ops/cuda/<op>.cu exposes its kernels through ops/cuda/cuda_ops.h.
// Empty until the first kernels land; an op without a CUDA kernel then says so by name.
#include "ops/kernel_registration.h"

namespace residual::ops {

void register_cuda_kernels() {}

}  // namespace residual::ops
