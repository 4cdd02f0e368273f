#pragma once
#include <cstddef>

namespace residual {

// Element types. Kernels today are float32; the field is carried so bf16/fp16 storage
// can arrive without changing the Tensor interface.
enum class DType { kFloat32, kBFloat16, kFloat16, kInt32, kUInt8 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

}  // namespace residual
