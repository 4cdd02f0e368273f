// Every op a ResNet or a small CNN uses, on a batch of 0 samples (a rank's empty shard of
// a global batch smaller than the world): no crash, no primitive error, nothing read or
// written out of bounds, parameter gradients zero (sums over no samples), loss 0.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

void expect_all_zero(const Tensor& t, const char* what) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    ASSERT_EQ(t.f32()[i], 0.f) << what << " element " << i;
  }
}

TEST(EmptyBatch, Conv2d) {
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
    const Tensor x = Tensor::empty(Shape{0, 8, 8, 3});
    const Tensor w = ref::uniform_tensor(Shape{5, 3, 3, 3}, rng);
    const Tensor b = ref::uniform_tensor(Shape{5}, rng);
    Tensor y = Tensor::empty(Shape{0, 4, 4, 5}), dx = Tensor::empty(x.shape());
    ops::conv2d_forward(g, x, w, bias ? &b : nullptr, y);
    ops::conv2d_backward_data(g, y, w, dx);
    Tensor dw = ref::nan_tensor(w.shape()), db = ref::nan_tensor(b.shape());
    ops::conv2d_backward_weights(g, x, y, dw, bias ? &db : nullptr);
    expect_all_zero(dw, "dkernel");
    if (bias) expect_all_zero(db, "dbias");
  }
}

TEST(EmptyBatch, Dense) {
  ref::Rng rng(2);
  const Tensor x = Tensor::empty(Shape{0, 6});
  const Tensor w = ref::uniform_tensor(Shape{4, 6}, rng), b = ref::uniform_tensor(Shape{4}, rng);
  Tensor y = Tensor::empty(Shape{0, 4}), dx = Tensor::empty(x.shape());
  ops::dense_forward(x, w, &b, y);
  ops::dense_backward_data(y, w, dx);
  Tensor dw = ref::nan_tensor(w.shape()), db = ref::nan_tensor(b.shape());
  ops::dense_backward_weights(x, y, dw, &db);
  expect_all_zero(dw, "dkernel");
  expect_all_zero(db, "dbias");
}

TEST(EmptyBatch, Pooling) {
  for (ops::PoolKind kind : {ops::PoolKind::kMax, ops::PoolKind::kAverage}) {
    ops::Pool2dGeometry g;
    g.batch = 0;
    g.in_h = g.in_w = 6;
    g.channels = 3;
    g.out_h = g.out_w = 3;
    g.kind = kind;
    const Tensor x = Tensor::empty(Shape{0, 6, 6, 3});
    Tensor y = Tensor::empty(Shape{0, 3, 3, 3}), dx = Tensor::empty(x.shape()), workspace;
    for (bool training : {false, true}) ops::pool2d_forward(g, x, y, workspace, training);
    ops::pool2d_backward(g, y, workspace, dx);
  }
}

TEST(EmptyBatch, ElementwiseAndShapeOps) {
  const Tensor x = Tensor::empty(Shape{0, 4, 4, 6});
  Tensor y = Tensor::empty(x.shape()), dx = Tensor::empty(x.shape());
  for (ops::Activation a : {ops::Activation::kLinear, ops::Activation::kRelu,
                            ops::Activation::kSigmoid, ops::Activation::kSoftmax}) {
    ops::activation_forward(a, x, y);
    ops::activation_backward(a, y, y, dx);
  }
  ops::add_forward({&x, &x, &x}, y);
  Tensor pooled = Tensor::empty(Shape{0, 6});
  ops::global_avg_pool_forward(x, pooled);
  ops::global_avg_pool_backward(pooled, dx);
  ops::channel_scale_forward(x, pooled, y);
  Tensor dscale = Tensor::empty(pooled.shape());
  ops::channel_scale_backward(x, pooled, y, &dx, &dscale);
  ops::Padding2d pad{1, 2, 0, 1};
  Tensor padded = Tensor::empty(Shape{0, 7, 5, 6});
  ops::zero_pad2d_forward(pad, x, padded);
  ops::zero_pad2d_backward(pad, padded, dx);
  Tensor shortcut = Tensor::empty(Shape{0, 2, 2, 10});
  ops::shortcut_pad_forward(2, 2, 2, x, shortcut);
  ops::shortcut_pad_backward(2, 2, 2, shortcut, dx);
  Tensor joined = Tensor::empty(Shape{0, 4, 4, 12});
  ops::concat_forward({&x, &x}, joined);
  Tensor dx2 = Tensor::empty(x.shape());
  ops::concat_backward(joined, {&dx, &dx2});
  ops::dropout_forward(0.5f, 7, x, y, 0);
  ops::dropout_backward(0.5f, 7, y, dx, 0);
  EXPECT_EQ(ops::squared_norm(x), 0.0);
}

TEST(EmptyBatch, BatchNormInference) {
  ref::Rng rng(3);
  const Tensor x = Tensor::empty(Shape{0, 4, 4, 6});
  const Tensor gamma = ref::uniform_tensor(Shape{6}, rng), beta = ref::uniform_tensor(Shape{6}, rng);
  const Tensor mean = ref::uniform_tensor(Shape{6}, rng);
  const Tensor var = ref::uniform_tensor(Shape{6}, rng, 0.5f, 1.f);
  Tensor y = Tensor::empty(x.shape());
  for (bool relu : {false, true}) {
    ops::batch_norm_forward_inference(x, gamma, beta, mean, var, 1e-3f, relu, y);
  }
}

// The mean over no samples is taken as 0 (not 0/0): a rank with an empty shard adds 0 to
// the summed loss, and its logits' gradient is empty.
TEST(EmptyBatch, LossesAreZero) {
  const Tensor logits = Tensor::empty(Shape{0, 10});
  const Tensor labels = Tensor::empty(Shape{0}, Device::cpu(), DType::kInt32);
  Tensor dlogits = Tensor::empty(logits.shape());
  EXPECT_EQ(ops::softmax_cross_entropy(logits, labels, 0.1f, dlogits, ops::kGradOfMean), 0.0);
  EXPECT_EQ(ops::softmax_cross_entropy(logits, labels, 0.f, dlogits, 1.0 / 64), 0.0);
  const Tensor binary = Tensor::empty(Shape{0, 1});
  Tensor dbinary = Tensor::empty(binary.shape());
  EXPECT_EQ(ops::sigmoid_binary_cross_entropy(binary, binary, dbinary, ops::kGradOfMean), 0.0);
}

}  // namespace
}  // namespace residual
