// CUDA tensors' memory on a real GPU: copies both ways, zeroing queued in order with
// them, and the caching allocator under it (no cudaMalloc once a step has run). Built in
// every configuration; without a GPU each test skips and says why.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/caching_allocator.h"
#include "core/device_memory.h"
#include "core/error.h"
#include "core/tensor.h"

namespace residual {
namespace {

class CudaMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) {
      GTEST_SKIP() << "no CUDA device: "
                   << (cuda_compiled() ? "the CUDA runtime sees no GPU on this machine"
                                       : "this residual was built without CUDA");
    }
  }
  static Tensor random_host(int64_t n, unsigned seed) {
    Tensor t = Tensor::empty(Shape{n});
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (int64_t i = 0; i < n; ++i) t.f32()[i] = uniform(rng);
    return t;
  }
  static bool same_bits(const Tensor& a, const Tensor& b) {
    return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
  }
};

TEST_F(CudaMemoryTest, HostToDeviceToHostKeepsEveryBit) {
  for (int64_t n : {int64_t{1}, int64_t{1000}, (int64_t{1} << 22) + 3}) {
    const Tensor host = random_host(n, 1);
    const Tensor device = host.to(Device::cuda(0));
    EXPECT_EQ(device.device(), Device::cuda(0));
    EXPECT_TRUE(same_bits(device.to(Device::cpu()), host)) << n << " floats";
  }
}

// Copy in, zero, copy in again, copy out: queued on one stream they run in that order,
// and the copy out waits for all of them.
TEST_F(CudaMemoryTest, ZeroingIsOrderedWithTheCopiesAroundIt) {
  const int64_t n = int64_t{1} << 24;  // 64 MiB: long enough for any reordering to show
  Tensor device = random_host(n, 2).to(Device::cuda(0));
  device.zero();
  const Tensor zeros = device.to(Device::cpu());
  EXPECT_TRUE(same_bits(zeros, Tensor::zeros(Shape{n})));
  const Tensor again = random_host(n, 3);
  device.copy_from(again);
  device.zero();
  device.copy_from(again);
  EXPECT_TRUE(same_bits(device.to(Device::cpu()), again));
}

TEST_F(CudaMemoryTest, DeviceToDeviceCopyOnOneGpu) {
  const Tensor host = random_host(123457, 4);
  const Tensor a = host.to(Device::cuda(0));
  Tensor b = Tensor::empty(Shape{123457}, Device::cuda(0));
  b.copy_from(a);
  const Tensor c = b.to(Device::cuda(0));  // to() of the same device is a copy too
  EXPECT_TRUE(same_bits(c.to(Device::cpu()), host));
}

// What a training step does to memory, in miniature: activations of a few sizes made and
// dropped in the same order each time, some zeroed, one copied in from the host.
void one_step(const Tensor& batch) {
  std::vector<Tensor> activations;
  for (int64_t n : {int64_t{128 * 32 * 32 * 16}, int64_t{128 * 16 * 16 * 32}, int64_t{640},
                    int64_t{128 * 32 * 32 * 16}, int64_t{17}}) {
    activations.push_back(Tensor::empty(Shape{n}, Device::cuda(0)));
  }
  activations[2].zero();
  Tensor input = Tensor::empty(batch.shape(), Device::cuda(0));
  input.copy_from(batch);
  Tensor workspace = Tensor::zeros(Shape{int64_t{3} << 20}, Device::cuda(0));
}

TEST_F(CudaMemoryTest, TheSteadyStateMakesNoCudaMalloc) {
  const Tensor batch = random_host(128 * 32 * 32 * 3, 5);
  one_step(batch);
  const CachingAllocatorStats first = cuda_backend::memory_stats(0);
  for (int step = 0; step < 10; ++step) one_step(batch);
  const CachingAllocatorStats later = cuda_backend::memory_stats(0);
  EXPECT_EQ(later.raw_allocs, first.raw_allocs) << "cudaMalloc called after the first step";
  EXPECT_GE(later.cache_hits, first.cache_hits + 10 * 7);
  EXPECT_EQ(later.bytes_in_use, first.bytes_in_use);
}

TEST_F(CudaMemoryTest, ReleasingTheCacheReturnsItsBlocksToTheDriver) {
  { Tensor t = Tensor::zeros(Shape{int64_t{1} << 20}, Device::cuda(0)); }
  const CachingAllocatorStats before = cuda_backend::memory_stats(0);
  EXPECT_GE(before.bytes_cached, size_t{4} << 20);
  cuda_backend::release_cached_memory();
  const CachingAllocatorStats after = cuda_backend::memory_stats(0);
  EXPECT_EQ(after.bytes_cached, 0u);
  EXPECT_GT(after.raw_frees, before.raw_frees);
}

// Far more than any GPU has: cudaMalloc fails, the cache is emptied, the retry fails, and
// the Error says so; the GPU stays usable (the runtime's error state was reset).
TEST_F(CudaMemoryTest, OutOfMemoryIsAnErrorAndTheGpuStaysUsable) {
  { Tensor cached = Tensor::empty(Shape{int64_t{1} << 20}, Device::cuda(0)); }
  try {
    Tensor huge = Tensor::empty(Shape{int64_t{1} << 40}, Device::cuda(0));  // 4 TiB
    FAIL() << "a 4 TiB tensor was allocated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0 is out of memory"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(cuda_backend::memory_stats(0).bytes_cached, 0u);  // released for the retry
  const Tensor host = random_host(1000, 6);
  EXPECT_TRUE(same_bits(host.to(Device::cuda(0)).to(Device::cpu()), host));
}

TEST_F(CudaMemoryTest, AMissingGpuIsAnErrorNamingIt) {
  const int count = cuda_device_count();
  EXPECT_THROW(Tensor::empty(Shape{4}, Device::cuda(count)), Error);
}

}  // namespace
}  // namespace residual
