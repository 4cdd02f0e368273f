// Tensors never pick a device silently: resize keeps or follows one, host accessors refuse
// device memory, and moves are all or nothing.
#include <gtest/gtest.h>

#include <string>

#include "core/device_memory.h"
#include "core/tensor.h"
#include "tests/core/tensor_test_peer.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

using test::error_of;
using test::has;

TEST(TensorDevice, ResizeKeepsItsOwnDeviceAndDtype) {
  Tensor t = Tensor::empty(Shape{4}, Device::cpu(), DType::kInt32);
  t.resize(Shape{2, 8});
  EXPECT_EQ(t.shape(), Shape({2, 8}));
  EXPECT_EQ(t.dtype(), DType::kInt32);
  EXPECT_EQ(t.device(), Device::cpu());
}

TEST(TensorDevice, ResizeOfAnUndefinedTensorNeedsADevice) {
  Tensor t;
  EXPECT_TRUE(has(error_of([&] { t.resize(Shape{3}); }), "needs a device"));
  EXPECT_FALSE(t.defined());
  EXPECT_TRUE(has(error_of([&] { t.resize_like(Tensor()); }), "undefined tensor"));
}

TEST(TensorDevice, ResizeLikeTakesTheDeviceAndDtypeOfItsInput) {
  const Tensor x = Tensor::empty(Shape{2, 3}, Device::cpu(), DType::kInt32);
  Tensor y;
  y.resize(Shape{6}, x);
  EXPECT_EQ(y.shape(), Shape({6}));
  EXPECT_EQ(y.dtype(), DType::kInt32);
  Tensor z = Tensor::empty(Shape{1});
  z.resize_like(x);
  EXPECT_EQ(z.shape(), x.shape());
  EXPECT_EQ(z.dtype(), DType::kInt32);
}

// The output of a (labelled) CUDA input is made on CUDA: without a GPU that allocation
// fails, and the output keeps its host storage rather than silently taking it as its own.
TEST(TensorDevice, AnOutputFollowsACudaInput) {
  const Tensor x = TensorTestPeer::labelled(Tensor::zeros(Shape{4}), Device::cuda(0));
  Tensor y = Tensor::zeros(Shape{4});
  if (cuda_device_count() == 0) {
    EXPECT_THROW(y.resize_like(x), Error);
    EXPECT_EQ(y.device(), Device::cpu());
  } else {
    y.resize_like(x);
    EXPECT_EQ(y.device(), Device::cuda(0));
  }
}

TEST(TensorDevice, HostAccessToADeviceTensorIsAClearError) {
  const Tensor host = Tensor::zeros(Shape{2, 3});
  const Tensor t = TensorTestPeer::labelled(host, Device::cuda(0));
  const std::string message = error_of([&] { t.f32(); });
  EXPECT_TRUE(has(message, "2x3 tensor on cuda:0"));
  EXPECT_TRUE(has(message, ".to(Device::cpu())"));
  EXPECT_TRUE(has(error_of([&] { t.raw(); }), "on cuda:0"));
  EXPECT_TRUE(has(error_of([&] { t.data<int32_t>(); }), "on cuda:0"));
  Tensor writable = t;
  EXPECT_TRUE(has(error_of([&] { writable.fill(1.f); }), "is on cuda:0"));
  // A kernel of the tensor's device gets its pointer.
  EXPECT_EQ(t.device_f32(), host.f32());
  EXPECT_EQ(t.device_data<float>(), host.f32());
}

TEST(TensorDevice, MovingToAMissingGpuMovesNothing) {
  Tensor a = Tensor::zeros(Shape{3}), b = Tensor::zeros(Shape{5});
  const float* a_data = a.f32();
  const float* b_data = b.f32();
  const Device missing = Device::cuda(cuda_device_count());  // one past the last GPU
  const std::string message = error_of([&] { move_all_to({&a, &b}, missing); });
  EXPECT_TRUE(has(message, "cannot use " + missing.str()));
  EXPECT_EQ(a.f32(), a_data);
  EXPECT_EQ(b.f32(), b_data);
}

TEST(TensorDevice, MovingToTheCurrentDeviceCopiesNothing) {
  Tensor a = Tensor::zeros(Shape{3}), undefined;
  const float* data = a.f32();
  move_all_to({&a, &undefined}, Device::cpu());
  EXPECT_EQ(a.f32(), data);
  EXPECT_FALSE(undefined.defined());
}

// on_device/on_host: the tensor itself where it already is (the CPU path copies nothing),
// a copy in the caller's buffer elsewhere, the buffer's storage reused from call to call.
TEST(TensorDevice, OnDeviceCopiesNothingOnTheSameDevice) {
  Tensor t = Tensor::zeros(Shape{3}), buffer;
  EXPECT_EQ(&on_host(t, buffer), &t);
  EXPECT_EQ(&on_device(t, Device::cpu(), buffer), &t);
  EXPECT_FALSE(buffer.defined());
}

TEST(TensorDevice, OnDeviceCopiesToAGpuIntoTheReusedBuffer) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  Tensor t = Tensor::zeros(Shape{3}), buffer;
  t.f32()[1] = 2.5f;
  const Tensor& there = on_device(t, Device::cuda(0), buffer);
  EXPECT_EQ(&there, &buffer);
  EXPECT_EQ(there.device(), Device::cuda(0));
  const void* storage = buffer.device_raw();
  on_device(t, Device::cuda(0), buffer);
  EXPECT_EQ(buffer.device_raw(), storage);
  Tensor back;
  EXPECT_EQ(on_host(buffer, back).f32()[1], 2.5f);
}

TEST(TensorDevice, CudaMoveKeepsValuesOrSkips) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  Tensor t = Tensor::zeros(Shape{3});
  t.f32()[2] = 4.5f;
  const float* before = t.f32();
  move_all_to({&t}, Device::cuda(0));
  EXPECT_EQ(t.device(), Device::cuda(0));
  EXPECT_TRUE(has(error_of([&] { t.f32(); }), "on cuda:0"));
  move_all_to({&t}, Device::cpu());
  EXPECT_NE(t.f32(), before);
  EXPECT_EQ(t.f32()[2], 4.5f);
}

}  // namespace
}  // namespace residual
