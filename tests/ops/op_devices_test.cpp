// The device list the op tests run on: without a GPU this is the one visible skip that
// says the op tests covered the CPU only.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/device_memory.h"
#include "ops/op.h"
#include "tests/ops/devices.h"

namespace residual {
namespace {

TEST(OpDevices, CpuComesFirst) {
  const std::vector<Device> devices = op_test::op_test_devices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices.front(), Device::cpu());
  EXPECT_EQ(op_test::device_name(Device::cpu()), "cpu");
  EXPECT_EQ(op_test::device_name(Device::cuda(1)), "cuda1");
}

TEST(OpDevices, GpuRunsOfTheOpTests) {
  const int gpus = cuda_device_count();
  if (gpus == 0) GTEST_SKIP() << "no CUDA device: the op tests ran on the CPU only";
  const std::vector<Device> devices = op_test::op_test_devices();
  EXPECT_EQ(devices.size(), static_cast<size_t>(gpus) + 1);
  for (int i = 0; i < gpus; ++i) {
    EXPECT_NE(std::find(devices.begin(), devices.end(), Device::cuda(i)), devices.end())
        << "cuda:" << i << " missing from the op test devices";
  }
}

// The skip reason names the device type and the op; an op with the kernel has none.
TEST(OpDevices, MissingKernelIsNamed) {
  ops::Op<void(const Tensor&)> cpu_only("cpu_only_test_op");
  cpu_only.implement(DeviceType::kCpu, [](const Tensor&) {});
  EXPECT_EQ(op_test::missing_kernel(cpu_only, Device::cpu()), "");
  EXPECT_EQ(op_test::missing_kernel(cpu_only, Device::cuda(0)),
            "no cuda kernel for cpu_only_test_op yet");
  ops::Op<void(const Tensor&)> other("other_test_op");
  EXPECT_EQ(op_test::missing_kernels(Device::cpu(), cpu_only, other),
            "no cpu kernel for other_test_op yet");
}

}  // namespace
}  // namespace residual
