// The op call's machinery: the device of the arguments, the kernel tables, and the
// one-time registration of every backend's kernels.
#include "ops/op.h"

#include "core/device_memory.h"
#include "core/error.h"
#include "ops/kernel_registration.h"
#include "ops/op_list.h"
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
#define RESIDUAL_OP_ADDRESS(Signature, name) &name,
  static const std::vector<const OpBase*> ops = {RESIDUAL_FOR_EACH_OP(RESIDUAL_OP_ADDRESS)};
#undef RESIDUAL_OP_ADDRESS
  return ops;
}

}  // namespace residual::ops
