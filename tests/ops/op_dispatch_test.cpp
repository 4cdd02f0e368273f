// The op call: every op has a CPU kernel, tensor arguments must share one device, and an
// op without a kernel for the device says so by name.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"

namespace residual {
namespace {

TEST(OpDispatch, EveryOpHasOneNameAndACpuKernel) {
  std::set<std::string> names;
  for (const ops::OpBase* op : ops::all_ops()) {
    EXPECT_TRUE(names.insert(op->name()).second) << "twice in all_ops(): " << op->name();
    EXPECT_TRUE(op->has_kernel(DeviceType::kCpu)) << op->name() << " has no CPU kernel";
  }
  EXPECT_GE(names.size(), 37u);
  EXPECT_TRUE(names.count("conv2d_forward"));
  EXPECT_TRUE(names.count("scale_inplace"));
}

TEST(OpDispatch, ArgumentsOnTwoDevicesAreAnErrorNamingBoth) {
  ops::ArgumentDevices devices("some_op");
  devices.note_device(1, Device::cpu());
  devices.note_device(2, Device::cpu());
  EXPECT_EQ(devices.device(), Device::cpu());
  try {
    devices.note_device(3, Device::cuda(1));
    FAIL() << "mixed devices were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "some_op: argument 3 is on cuda:1 but argument 1 is on cpu (move tensors with "
              ".to(device) before the call)");
  }
  ops::ArgumentDevices two_gpus("other_op");
  two_gpus.note_device(2, Device::cuda(0));
  EXPECT_THROW(two_gpus.note_device(4, Device::cuda(1)), Error);
}

TEST(OpDispatch, NoTensorOrOnlyUndefinedOnesMeansTheCpu) {
  ops::ArgumentDevices devices("op");
  Tensor undefined;
  devices.note(1, undefined);
  devices.note(2, static_cast<const Tensor*>(nullptr));
  devices.note(3, 0.5f);
  EXPECT_EQ(devices.device(), Device::cpu());
}

// A test op with every kind of tensor argument: the kernel sees the caller's objects.
using ProbeFn = int(const Tensor& a, const Tensor* b, const std::vector<const Tensor*>& c,
                    Tensor& out, float scale);
int probe_calls = 0;
const Tensor* probe_out = nullptr;
int probe_kernel(const Tensor&, const Tensor*, const std::vector<const Tensor*>& c, Tensor& out,
                 float scale) {
  ++probe_calls;
  probe_out = &out;
  return static_cast<int>(c.size() * scale);
}

TEST(OpDispatch, CallsTheRegisteredKernelWithTheCallersArguments) {
  static ops::Op<ProbeFn> probe("probe");
  probe.implement(DeviceType::kCpu, probe_kernel);
  Tensor a = Tensor::zeros(Shape{2}), b = Tensor::zeros(Shape{3}), out;
  const std::vector<const Tensor*> c = {&a, &b, nullptr};
  EXPECT_EQ(probe(a, &b, c, out, 2.f), 6);
  EXPECT_EQ(probe_calls, 1);
  EXPECT_EQ(probe_out, &out);
}

TEST(OpDispatch, AnOpWithoutAKernelForTheDeviceSaysSo) {
  static ops::Op<void(const Tensor&)> unimplemented("unimplemented_op");
  EXPECT_FALSE(unimplemented.has_kernel(DeviceType::kCpu));
  try {
    unimplemented(Tensor::zeros(Shape{1}));
    FAIL() << "an op without a kernel ran";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "unimplemented_op: no cpu kernel (not implemented for that device yet)");
  }
}

}  // namespace
}  // namespace residual
