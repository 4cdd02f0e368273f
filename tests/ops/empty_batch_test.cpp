// Every op a ResNet or a small CNN uses, on a batch of 0 samples (a rank's empty shard of
// a global batch smaller than the world): no crash, no primitive error, nothing read or
// written out of bounds, parameter gradients zero (sums over no samples), loss 0. Every
// test runs on every device.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;

void expect_all_zero(const Tensor& t_any, const char* what) {
  const Tensor t = ref::host_copy(t_any);
  for (int64_t i = 0; i < t.numel(); ++i) {
    ASSERT_EQ(t.f32()[i], 0.f) << what << " element " << i;
  }
}

class EmptyBatchTest : public ::testing::TestWithParam<Device> {
 protected:
  Device device() const { return GetParam(); }
  // An empty (or any) tensor made on the device, contents unset.
  Tensor empty(const Shape& shape, DType dtype = DType::kFloat32) const {
    return Tensor::empty(shape, device(), dtype);
  }
  // A NaN tensor on the device: what a parameter gradient must overwrite with zeros.
  Tensor nan_output(const Shape& shape) const { return on(device(), ref::nan_tensor(shape)); }
};

TEST_P(EmptyBatchTest, Conv2d) {
  SKIP_WITHOUT_KERNELS(device(), ops::conv2d_forward, ops::conv2d_backward_data,
                       ops::conv2d_backward_weights);
  for (bool bias : {true, false}) {
    ops::Conv2dGeometry g;
    g.batch = 0;
    g.in_h = g.in_w = 8;
    g.in_c = 3;
    g.out_h = g.out_w = 4;
    g.out_c = 5;
    g.kernel_h = g.kernel_w = 3;
    g.stride_h = g.stride_w = 2;
    g.pad_top = g.pad_left = 0;
    g.pad_bottom = g.pad_right = 1;
    ref::Rng rng(1);
    const Tensor x = empty(Shape{0, 8, 8, 3});
    const Tensor w = on(device(), ref::uniform_tensor(Shape{5, 3, 3, 3}, rng));
    const Tensor b = on(device(), ref::uniform_tensor(Shape{5}, rng));
    Tensor y = empty(Shape{0, 4, 4, 5}), dx = empty(x.shape());
    ops::conv2d_forward(g, x, w, bias ? &b : nullptr, y);
    ops::conv2d_backward_data(g, y, w, dx);
    Tensor dw = nan_output(w.shape()), db = nan_output(b.shape());
    ops::conv2d_backward_weights(g, x, y, dw, bias ? &db : nullptr);
    expect_all_zero(dw, "dkernel");
    if (bias) expect_all_zero(db, "dbias");
  }
}

TEST_P(EmptyBatchTest, Dense) {
  SKIP_WITHOUT_KERNELS(device(), ops::dense_forward, ops::dense_backward_data,
                       ops::dense_backward_weights);
  ref::Rng rng(2);
  const Tensor x = empty(Shape{0, 6});
  const Tensor w = on(device(), ref::uniform_tensor(Shape{4, 6}, rng));
  const Tensor b = on(device(), ref::uniform_tensor(Shape{4}, rng));
  Tensor y = empty(Shape{0, 4}), dx = empty(x.shape());
  ops::dense_forward(x, w, &b, y);
  ops::dense_backward_data(y, w, dx);
  Tensor dw = nan_output(w.shape()), db = nan_output(b.shape());
  ops::dense_backward_weights(x, y, dw, &db);
  expect_all_zero(dw, "dkernel");
  expect_all_zero(db, "dbias");
}

TEST_P(EmptyBatchTest, Pooling) {
  SKIP_WITHOUT_KERNELS(device(), ops::pool2d_forward, ops::pool2d_backward);
  for (ops::PoolKind kind : {ops::PoolKind::kMax, ops::PoolKind::kAverage}) {
    ops::Pool2dGeometry g;
    g.batch = 0;
    g.in_h = g.in_w = 6;
    g.channels = 3;
    g.out_h = g.out_w = 3;
    g.kind = kind;
    const Tensor x = empty(Shape{0, 6, 6, 3});
    Tensor y = empty(Shape{0, 3, 3, 3}), dx = empty(x.shape()), workspace;
    for (bool training : {false, true}) ops::pool2d_forward(g, x, y, workspace, training);
    ops::pool2d_backward(g, y, workspace, dx);
  }
}

TEST_P(EmptyBatchTest, ElementwiseAndShapeOps) {
  SKIP_WITHOUT_KERNELS(device(), ops::activation_forward, ops::activation_backward,
                       ops::add_forward, ops::global_avg_pool_forward,
                       ops::global_avg_pool_backward, ops::channel_scale_forward,
                       ops::channel_scale_backward, ops::zero_pad2d_forward,
                       ops::zero_pad2d_backward, ops::shortcut_pad_forward,
                       ops::shortcut_pad_backward, ops::concat_forward, ops::concat_backward,
                       ops::dropout_forward, ops::dropout_backward, ops::squared_norm);
  const Tensor x = empty(Shape{0, 4, 4, 6});
  Tensor y = empty(x.shape()), dx = empty(x.shape());
  for (ops::Activation a : {ops::Activation::kLinear, ops::Activation::kRelu,
                            ops::Activation::kSigmoid, ops::Activation::kSoftmax}) {
    ops::activation_forward(a, x, y);
    ops::activation_backward(a, y, y, dx);
  }
  ops::add_forward({&x, &x, &x}, false, y);
  Tensor pooled = empty(Shape{0, 6});
  ops::global_avg_pool_forward(x, pooled);
  ops::global_avg_pool_backward(pooled, dx);
  ops::channel_scale_forward(x, pooled, y);
  Tensor dscale = empty(pooled.shape());
  ops::channel_scale_backward(x, pooled, y, &dx, &dscale);
  ops::Padding2d pad{1, 2, 0, 1};
  Tensor padded = empty(Shape{0, 7, 5, 6});
  ops::zero_pad2d_forward(pad, x, padded);
  ops::zero_pad2d_backward(pad, padded, dx);
  Tensor shortcut = empty(Shape{0, 2, 2, 10});
  ops::shortcut_pad_forward(2, 2, 2, x, shortcut);
  ops::shortcut_pad_backward(2, 2, 2, shortcut, dx);
  Tensor joined = empty(Shape{0, 4, 4, 12});
  ops::concat_forward({&x, &x}, joined);
  Tensor dx2 = empty(x.shape());
  ops::concat_backward(joined, {&dx, &dx2});
  ops::dropout_forward(0.5f, 7, x, y, 0);
  ops::dropout_backward(0.5f, 7, y, dx, 0);
  EXPECT_EQ(ops::squared_norm(x), 0.0);
}

TEST_P(EmptyBatchTest, BatchNormInference) {
  SKIP_WITHOUT_KERNEL(ops::batch_norm_forward_inference, device());
  ref::Rng rng(3);
  const Tensor x = empty(Shape{0, 4, 4, 6});
  const Tensor gamma = on(device(), ref::uniform_tensor(Shape{6}, rng));
  const Tensor beta = on(device(), ref::uniform_tensor(Shape{6}, rng));
  const Tensor mean = on(device(), ref::uniform_tensor(Shape{6}, rng));
  const Tensor var = on(device(), ref::uniform_tensor(Shape{6}, rng, 0.5f, 1.f));
  Tensor y = empty(x.shape());
  for (bool relu : {false, true}) {
    ops::batch_norm_forward_inference(x, gamma, beta, mean, var, 1e-3f, relu, y);
  }
}

// The mean over no samples is taken as 0 (not 0/0): a rank with an empty shard adds 0 to
// the summed loss, and its logits' gradient is empty.
TEST_P(EmptyBatchTest, LossesAreZero) {
  SKIP_WITHOUT_KERNELS(device(), ops::softmax_cross_entropy, ops::sigmoid_binary_cross_entropy);
  const Tensor logits = empty(Shape{0, 10});
  const Tensor labels = empty(Shape{0}, DType::kInt32);
  Tensor dlogits = empty(logits.shape());
  EXPECT_EQ(ops::softmax_cross_entropy(logits, labels, 0.1f, dlogits, ops::kGradOfMean), 0.0);
  EXPECT_EQ(ops::softmax_cross_entropy(logits, labels, 0.f, dlogits, 1.0 / 64), 0.0);
  const Tensor binary = empty(Shape{0, 1});
  Tensor dbinary = empty(binary.shape());
  EXPECT_EQ(ops::sigmoid_binary_cross_entropy(binary, binary, dbinary, ops::kGradOfMean), 0.0);
}

INSTANTIATE_ON_OP_TEST_DEVICES(EmptyBatchTest);

}  // namespace
}  // namespace residual
