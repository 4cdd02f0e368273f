#pragma once
// The CUDA kernels of the ops in ops/ops.h, declared through the ops' own signatures (so a
// kernel whose parameters drift from its op does not compile into the registration).
// Defined in ops/cuda/<op>.cu beside the CPU twin ops/cpu/<op>.cpp, registered in
// ops/cuda/cuda_kernels.cpp. A host header: no CUDA includes.
#include "ops/op_list.h"
#include "ops/ops.h"

namespace residual::ops::gpu {

#define RESIDUAL_DECLARE_KERNEL(Signature, name) Signature name;
RESIDUAL_FOR_EACH_OP(RESIDUAL_DECLARE_KERNEL)
#undef RESIDUAL_DECLARE_KERNEL

}  // namespace residual::ops::gpu
