#include <gtest/gtest.h>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/tensor.h"

namespace residual {
namespace {

TEST(Tensor, ZerosHasShapeAndZeroes) {
  Tensor t = Tensor::zeros(Shape{2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.shape().str(), "2x3x4");
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.f32()[i], 0.f);
}

TEST(Tensor, ResizeReusesLargeEnoughStorage) {
  Tensor t = Tensor::empty(Shape{8, 8});
  void* before = t.raw();
  t.resize(Shape{4, 8});
  EXPECT_EQ(t.raw(), before);
  t.resize(Shape{16, 8});
  EXPECT_EQ(t.numel(), 128);
}

TEST(Tensor, ViewSharesAndChecksCount) {
  Tensor t = Tensor::zeros(Shape{2, 6});
  Tensor v = t.view(Shape{3, 4});
  v.f32()[5] = 7.f;
  EXPECT_EQ(t.f32()[5], 7.f);
  EXPECT_THROW(t.view(Shape{5}), Error);
}

TEST(Tensor, CloneIsDeep) {
  Tensor t = Tensor::zeros(Shape{4});
  Tensor c = t.clone();
  c.f32()[0] = 1.f;
  EXPECT_EQ(t.f32()[0], 0.f);
}

TEST(Tensor, CudaRoundTripOrClearSkip) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  Tensor t = Tensor::zeros(Shape{3});
  t.f32()[1] = 2.5f;
  Tensor back = t.to(Device::cuda(0)).to(Device::cpu());
  EXPECT_EQ(back.f32()[1], 2.5f);
}

}  // namespace
}  // namespace residual
