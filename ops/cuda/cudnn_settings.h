#pragma once
// Switches of the cuDNN convolutions (ops/cuda/conv2d.cu). A host header: no CUDA
// includes; compiled only where the CUDA backend is (ops/CMakeLists.txt).

namespace residual::cuda {

// Whether float32 convolutions may run on TF32 tensor cores (10-bit mantissa products,
// several times faster on Ampere and later). Off by default: convolutions then run in
// true float32 (CUDNN_FMA_MATH) and match the CPU's oneDNN results to rounding, as the
// op tests require. Takes effect from the next convolution call; algorithm choices are
// cached separately for each setting.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace residual::cuda
