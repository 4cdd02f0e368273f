#pragma once
// Raw memory on a device. The CPU side lives in core; the CUDA side is compiled from
// ops/cuda (or ops/cpu/no_cuda.cpp in a CPU-only build): one implementation per build.
#include <cstddef>

#include "core/device.h"

namespace residual {

void* device_alloc(Device device, size_t bytes);
void device_free(Device device, void* ptr);
// Copies between any two devices (host<->CUDA, CUDA<->CUDA, host<->host).
void device_copy(void* dst, Device dst_device, const void* src, Device src_device,
                 size_t bytes);
void device_memset_zero(Device device, void* ptr, size_t bytes);

// The CUDA backend: whether it was compiled in, and how many GPUs it sees (0 if none).
bool cuda_compiled();
int cuda_device_count();

namespace cuda_backend {
void* alloc(int index, size_t bytes);
void free(int index, void* ptr);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void memset_zero(int index, void* ptr, size_t bytes);
bool compiled();
int device_count();
}  // namespace cuda_backend

}  // namespace residual
