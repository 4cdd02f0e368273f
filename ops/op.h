#pragma once
// An op: one signature, one kernel per device type, and a call that finds the device of
// its tensor arguments and runs that device's kernel. Backends register kernels
// explicitly (ops/kernel_registration.h), never through static initialisers; an op with
// no kernel for the device is a clear error, never a silent host fallback.
#include <type_traits>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"

namespace residual::ops {

constexpr int kDeviceTypeCount = 2;  // DeviceType::kCpu, DeviceType::kCuda

// The one device of an op's tensor arguments. Undefined tensors (outputs the kernel will
// size) and null pointers have none; two arguments on different devices are an error
// naming the op and both arguments (1-based positions). No tensor at all: the CPU.
class ArgumentDevices {
 public:
  explicit ArgumentDevices(const char* op) : op_(op) {}

  template <typename A>
  void note(int position, const A& argument) {
    using T = std::remove_cv_t<A>;
    if constexpr (std::is_same_v<T, Tensor>) {
      note_tensor(position, argument);
    } else if constexpr (std::is_same_v<T, Tensor*> || std::is_same_v<T, const Tensor*>) {
      if (argument) note_tensor(position, *argument);
    } else if constexpr (std::is_same_v<T, std::vector<Tensor*>> ||
                         std::is_same_v<T, std::vector<const Tensor*>>) {
      for (const Tensor* t : argument) {
        if (t) note_tensor(position, *t);
      }
    }
  }
  // A defined tensor's device (also how tests check the rule without GPU memory).
  void note_device(int position, Device device);
  Device device() const { return device_; }

 private:
  void note_tensor(int position, const Tensor& t) {
    if (t.defined()) note_device(position, t.device());
  }

  const char* op_;
  int position_ = 0;  // of the first argument that had a device; 0: none yet
  Device device_ = Device::cpu();
};

// The untyped part of every op: its name and kernel table.
class OpBase {
 public:
  using AnyKernel = void (*)();
  constexpr explicit OpBase(const char* name) : name_(name) {}
  OpBase(const OpBase&) = delete;
  OpBase& operator=(const OpBase&) = delete;

  const char* name() const { return name_; }
  bool has_kernel(DeviceType type) const;

 protected:
  void set_kernel(DeviceType type, AnyKernel kernel);
  // The kernel for `device`, registering every backend's kernels on first use.
  AnyKernel kernel_for(Device device) const;

 private:
  const char* name_;
  AnyKernel kernels_[kDeviceTypeCount] = {};
};

template <typename Signature>
class Op;

template <typename R, typename... Args>
class Op<R(Args...)> : public OpBase {
 public:
  using Kernel = R (*)(Args...);
  constexpr explicit Op(const char* name) : OpBase(name) {}

  // A backend's kernel for this op (a second registration for a device replaces the
  // first: tests use that to count calls).
  void implement(DeviceType type, Kernel kernel) {
    set_kernel(type, reinterpret_cast<AnyKernel>(kernel));
  }

  R operator()(Args... args) const {
    ArgumentDevices devices(name());
    int position = 0;
    (devices.note(++position, args), ...);
    const auto kernel = reinterpret_cast<Kernel>(kernel_for(devices.device()));
    return kernel(std::forward<Args>(args)...);
  }
};

// Every op of ops/ops.h, for tests and tools that walk the kernel tables.
const std::vector<const OpBase*>& all_ops();

}  // namespace residual::ops
