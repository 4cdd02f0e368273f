#pragma once
// The launch machinery shared by the per-tensor optimizer ops and their fused multi-tensor
// versions (ops/cuda/multi_tensor.h): an update is a functor applied to element i of a
// few same-sized float arrays (param, grad, state...), and one kernel applies it to a
// list of such tensors passed by value in the kernel's arguments. The per-tensor op is
// the same kernel over a list of one, so the two paths cannot drift apart numerically.
// For .cu files only.
#include <array>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/multi_tensor.h"

namespace residual::ops::gpu {

// Pointers of up to kCapacity tensors, kArrays arrays per tensor (data[a][t]).
template <int kArrays, int kCapacity>
struct TensorList {
  float* data[kArrays][kCapacity];
  int64_t numel[kCapacity];
  int count;
};

// Every thread walks every tensor of the list with a grid-stride loop: cheap for the
// many tiny tensors, and the grid is sized for the largest one.
template <int kArrays, int kCapacity, typename Update>
__global__ void tensor_list_kernel(TensorList<kArrays, kCapacity> list, Update update) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  // A list of one is never launched empty: a constant count lets the compiler keep its
  // pointers in registers instead of a local copy of the arguments.
  const int count = kCapacity == 1 ? 1 : list.count;
  for (int t = 0; t < count; ++t) {
    float* arrays[kArrays];
    for (int a = 0; a < kArrays; ++a) arrays[a] = list.data[a][t];
    const int64_t n = list.numel[t];
    for (int64_t i = first; i < n; i += stride) update(arrays, i);
  }
}

// Checks every slot (one device for all, float32, equal element counts within a slot)
// and applies `update` to all of them in launches of up to kMaxTensorsPerLaunch tensors
// (a list of one when `slots` has one slot: the per-tensor ops). `what` names the op in
// errors.
template <int kArrays, typename Update>
void apply_to_tensors(const char* what,
                      const std::vector<std::array<const Tensor*, kArrays>>& slots,
                      const Update& update) {
  if (slots.empty()) return;
  const Device device = slots.front()[0]->device();
  RESIDUAL_CHECK(device.is_cuda(), what, ": tensors on ", device.str(), ", expected a GPU");
  for (size_t s = 0; s < slots.size(); ++s) {
    const int64_t n = slots[s][0]->numel();
    for (int a = 0; a < kArrays; ++a) {
      const Tensor& t = *slots[s][a];
      RESIDUAL_CHECK(t.device() == device, what, ": slot ", s, " tensor ", a, " is on ",
                     t.device().str(), " but slot 0 is on ", device.str());
      RESIDUAL_CHECK(t.numel() == n, what, ": slot ", s, " tensor ", a, " has ", t.numel(),
                     " elements, its parameter ", n);
    }
  }
  cuda::DeviceGuard guard(device.index);
  const cudaStream_t stream = cuda::compute_stream(device.index);
  auto launch = [&](const auto& list, int64_t largest) {
    if (list.count == 0) return;
    tensor_list_kernel<<<cuda::grid_for(largest), cuda::kThreadsPerBlock, 0, stream>>>(list,
                                                                                       update);
    cuda::check_launch(what);
  };
  if (slots.size() == 1) {
    TensorList<kArrays, 1> one{};
    const int64_t n = slots[0][0]->numel();
    if (n == 0) return;
    for (int a = 0; a < kArrays; ++a) one.data[a][0] = slots[0][a]->device_f32();
    one.numel[0] = n;
    one.count = 1;
    launch(one, n);
    return;
  }
  TensorList<kArrays, kMaxTensorsPerLaunch> list{};
  int64_t largest = 0;
  for (const auto& slot : slots) {
    const int64_t n = slot[0]->numel();
    if (n == 0) continue;
    for (int a = 0; a < kArrays; ++a) list.data[a][list.count] = slot[a]->device_f32();
    list.numel[list.count++] = n;
    largest = std::max(largest, n);
    if (list.count == kMaxTensorsPerLaunch) {
      launch(list, largest);
      list.count = 0;
      largest = 0;
    }
  }
  launch(list, largest);
}

}  // namespace residual::ops::gpu
