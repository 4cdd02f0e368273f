// Registers every CUDA kernel with its op: the CUDA backend's one list (ops/op_list.h).
// Host code (no CUDA headers): each ops/cuda/<op>.cu defines its kernels, declared in
// ops/cuda/cuda_ops.h beside their CPU twins in ops/cpu/.
#include "ops/cuda/cuda_ops.h"
#include "ops/kernel_registration.h"

namespace residual::ops {

void register_cuda_kernels() {
#define RESIDUAL_REGISTER_KERNEL(Signature, name) name.implement(DeviceType::kCuda, gpu::name);
  RESIDUAL_FOR_EACH_OP(RESIDUAL_REGISTER_KERNEL)
#undef RESIDUAL_REGISTER_KERNEL
}

}  // namespace residual::ops
