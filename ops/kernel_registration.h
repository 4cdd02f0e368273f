#pragma once
// Each backend's one registration function: it hands every kernel it has to its op
// (op.implement(DeviceType::..., kernel)). Called once, on the first op call.
// register_cuda_kernels comes from ops/cuda/cuda_kernels.cpp, or ops/no_cuda_kernels.cpp
// in a CPU-only build (one of the two is compiled, chosen in ops/CMakeLists.txt).
namespace residual::ops {

void register_cpu_kernels();
void register_cuda_kernels();

}  // namespace residual::ops
