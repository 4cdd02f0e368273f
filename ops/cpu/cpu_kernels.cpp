// Registers every CPU kernel with its op: the CPU backend's one list (ops/op_list.h).
#include "ops/cpu/cpu_ops.h"
#include "ops/kernel_registration.h"

namespace residual::ops {

void register_cpu_kernels() {
#define RESIDUAL_REGISTER_KERNEL(Signature, name) name.implement(DeviceType::kCpu, cpu::name);
  RESIDUAL_FOR_EACH_OP(RESIDUAL_REGISTER_KERNEL)
#undef RESIDUAL_REGISTER_KERNEL
}

}  // namespace residual::ops
