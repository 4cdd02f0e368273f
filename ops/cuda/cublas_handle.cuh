#pragma once
// One cuBLAS handle per GPU, bound to that GPU's compute stream. For .cu files only (it
// includes the cuBLAS header); ops/cuda/cublas_handle.cu says how handles live and die.
#include <cublas_v2.h>

namespace residual::cuda {

// The handle of GPU `device`, made on first use. Its stream is compute_stream(device), so
// cuBLAS work is ordered with every other kernel, copy and memset of that GPU; its math
// mode is CUBLAS_PEDANTIC_MATH: float32 GEMMs run in true float32 (no TF32 or BF16x9
// emulation, whatever NVIDIA_TF32_OVERRIDE or cuBLAS's emulation variables say), so
// results match the CPU's oneDNN float32 to rounding.
//
// Safe to use from several threads: cuBLAS allows threads to share a handle whose
// configuration does not change, and nothing changes it after it is made (callers must
// not call cublasSetStream, cublasSetMathMode or cublasSetWorkspace on it).
// Results are bit-identical run to run on one GPU model and toolkit: one handle, one stream.
cublasHandle_t cublas_handle(int device);

// A failed cuBLAS call is an Error naming the call and cuBLAS's reason.
void check_cublas(cublasStatus_t status, const char* what);

}  // namespace residual::cuda
