// The device list the op tests run on: without a GPU this is the one visible skip that
// says the op tests covered the CPU only.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/device_memory.h"
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

}  // namespace
}  // namespace residual
