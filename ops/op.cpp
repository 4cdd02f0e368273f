// The op call's machinery: the device of the arguments, the kernel tables, and the
// one-time registration of every backend's kernels.
#include "ops/op.h"

#include "core/device_memory.h"
#include "core/error.h"
#include "ops/kernel_registration.h"
#include "ops/ops.h"

namespace residual::ops {
namespace {

int slot(DeviceType type) { return type == DeviceType::kCpu ? 0 : 1; }

void register_every_backend_once() {
  // A function-local static: thread-safe, and no static-initialisation order to trust.
  static const bool registered = [] {
    register_cpu_kernels();
    register_cuda_kernels();
    return true;
  }();
  (void)registered;
}

}  // namespace

void ArgumentDevices::note_device(int position, Device device) {
  if (position_ == 0) {
    position_ = position;
    device_ = device;
    return;
  }
  RESIDUAL_CHECK(device == device_, op_, ": argument ", position, " is on ", device.str(),
                 " but argument ", position_, " is on ", device_.str(),
                 " (move tensors with .to(device) before the call)");
}

bool OpBase::has_kernel(DeviceType type) const {
  register_every_backend_once();
  return kernels_[slot(type)] != nullptr;
}

void OpBase::set_kernel(DeviceType type, AnyKernel kernel) { kernels_[slot(type)] = kernel; }

OpBase::AnyKernel OpBase::kernel_for(Device device) const {
  register_every_backend_once();
  const AnyKernel kernel = kernels_[slot(device.type)];
  if (kernel) return kernel;
  if (device.is_cuda() && !cuda_compiled()) {
    fail(name_, ": no ", device.str(), " kernel: this residual was built without CUDA");
  }
  fail(name_, ": no ", device.str(), " kernel (not implemented for that device yet)");
}

const std::vector<const OpBase*>& all_ops() {
  static const std::vector<const OpBase*> ops = {
      &conv2d_forward,
      &conv2d_backward_data,
      &conv2d_backward_weights,
      &pool2d_forward,
      &pool2d_backward,
      &dense_forward,
      &dense_backward_data,
      &dense_backward_weights,
      &batch_norm_forward_training,
      &batch_norm_forward_inference,
      &batch_norm_backward,
      &batch_norm_update_running,
      &batch_norm_partial_sums,
      &batch_norm_moments,
      &batch_norm_backward_partial_sums,
      &batch_norm_backward_apply,
      &activation_forward,
      &activation_backward,
      &add_forward,
      &channel_scale_forward,
      &channel_scale_backward,
      &global_avg_pool_forward,
      &global_avg_pool_backward,
      &zero_pad2d_forward,
      &zero_pad2d_backward,
      &shortcut_pad_forward,
      &shortcut_pad_backward,
      &concat_forward,
      &concat_backward,
      &dropout_forward,
      &dropout_backward,
      &softmax_cross_entropy,
      &sigmoid_binary_cross_entropy,
      &sgd_step,
      &adam_step,
      &squared_norm,
      &scale_inplace,
  };
  return ops;
}

}  // namespace residual::ops
