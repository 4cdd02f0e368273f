// Max and average pooling (oneDNN) against naive double loops. Average pooling excludes
// the padding from the divisor (Keras); max pooling routes the gradient to the argmax the
// forward chose, through the caller-owned workspace. Every case runs on every device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::device_name;
using op_test::on;
using ops::Pool2dGeometry;
using ops::PoolKind;
using ref::Expected;

struct PoolCase {
  std::string name;
  Pool2dGeometry g;
};

void PrintTo(const PoolCase& c, std::ostream* out) { *out << c.name; }

PoolCase pool_case(std::string name, int64_t batch, int64_t in_h, int64_t in_w,
                   int64_t channels, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                   int64_t stride_w, int64_t pad_top = 0, int64_t pad_bottom = 0,
                   int64_t pad_left = 0, int64_t pad_right = 0) {
  PoolCase c;
  c.name = std::move(name);
  Pool2dGeometry& g = c.g;
  g.batch = batch;
  g.in_h = in_h;
  g.in_w = in_w;
  g.channels = channels;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_top = pad_top;
  g.pad_bottom = pad_bottom;
  g.pad_left = pad_left;
  g.pad_right = pad_right;
  g.out_h = (in_h + pad_top + pad_bottom - kernel_h) / stride_h + 1;
  g.out_w = (in_w + pad_left + pad_right - kernel_w) / stride_w + 1;
  return c;
}

const std::vector<PoolCase>& cases() {
  static const std::vector<PoolCase> all = {
      pool_case("K2S2", 2, 8, 6, 5, 2, 2, 2, 2),
      // 'valid' drops the last row and column: their gradient must be zero.
      pool_case("K2S2OddValid", 2, 7, 5, 3, 2, 2, 2, 2),
      pool_case("K3S2Pad1", 2, 7, 9, 19, 3, 3, 2, 2, 1, 1, 1, 1),
      // Keras 'same' for 3x3 stride 2 on 8 x 8 pads nothing before, one after.
      pool_case("K3S2SameAsym", 3, 8, 8, 4, 3, 3, 2, 2, 0, 1, 0, 1),
      pool_case("K3S1Same", 1, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1),
      // Overlapping windows (stride < kernel): gradients from several outputs add up.
      pool_case("K2x3S1x2", 2, 7, 5, 7, 2, 3, 1, 2),
      pool_case("K3S2ValidOverlap", 2, 9, 7, 2, 3, 3, 2, 2),
      pool_case("K3x2S2x1PadAsym", 2, 6, 5, 17, 3, 2, 2, 1, 1, 1, 0, 1),
      // Full 16-lane channel blocks, as real networks use: oneDNN's fast paths.
      pool_case("K3S2Pad1Channels64", 2, 9, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1),
  };
  return all;
}

// Calls fn(y_index, x_index) for every input element inside each output's window.
template <typename Fn>
void for_each_window_element(const Pool2dGeometry& g, Fn&& fn) {
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        for (int64_t c = 0; c < g.channels; ++c) {
          const int64_t yi = ((n * g.out_h + oh) * g.out_w + ow) * g.channels + c;
          for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
            const int64_t ih = oh * g.stride_h - g.pad_top + kh;
            if (ih < 0 || ih >= g.in_h) continue;
            for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
              const int64_t iw = ow * g.stride_w - g.pad_left + kw;
              if (iw < 0 || iw >= g.in_w) continue;
              fn(yi, ((n * g.in_h + ih) * g.in_w + iw) * g.channels + c);
            }
          }
        }
      }
    }
  }
}

// Flat index of the largest input in each output's window.
std::vector<int64_t> argmax_of(const Pool2dGeometry& g, const Tensor& x) {
  std::vector<int64_t> argmax(static_cast<size_t>(g.batch * g.out_h * g.out_w * g.channels), -1);
  for_each_window_element(g, [&](int64_t yi, int64_t xi) {
    int64_t& best = argmax[static_cast<size_t>(yi)];
    if (best < 0 || x.f32()[xi] > x.f32()[best]) best = xi;
  });
  return argmax;
}

// (geometry, max or average, device). x_ and dy_ live on the host for the references;
// the ops get copies on device_ and write outputs (y, workspace, dx) there.
using PoolParam = std::tuple<PoolCase, PoolKind, Device>;

class Pool2dTest : public ::testing::TestWithParam<PoolParam> {
 protected:
  void SetUp() override {
    g_ = std::get<0>(GetParam()).g;
    g_.kind = std::get<1>(GetParam());
    device_ = std::get<2>(GetParam());
    ASSERT_GT(g_.out_h, 0);
    ASSERT_GT(g_.out_w, 0);
    ref::Rng rng(4321);
    // Distinct values: with ties the argmax is a matter of convention, not of correctness.
    x_ = ref::distinct_tensor(x_shape(), rng);
    dy_ = ref::uniform_tensor(y_shape(), rng);
    argmax_ = argmax_of(g_, x_);
    // The average's divisor: window elements inside the input (padding excluded).
    count_.assign(static_cast<size_t>(y_shape().numel()), 0);
    for_each_window_element(g_, [&](int64_t yi, int64_t) { ++count_[static_cast<size_t>(yi)]; });
  }

  Shape x_shape() const { return Shape{g_.batch, g_.in_h, g_.in_w, g_.channels}; }
  Tensor nan_output(const Shape& shape) const { return on(device_, ref::nan_tensor(shape)); }
  Shape y_shape() const { return Shape{g_.batch, g_.out_h, g_.out_w, g_.channels}; }

  Expected forward_reference() const {
    Expected y(y_shape().numel());
    if (g_.kind == PoolKind::kMax) {
      for (int64_t i = 0; i < y_shape().numel(); ++i) y.add(i, x_.f32()[argmax_[i]]);
    } else {
      for_each_window_element(g_, [&](int64_t yi, int64_t xi) {
        y.add(yi, static_cast<double>(x_.f32()[xi]) / count_[static_cast<size_t>(yi)]);
      });
    }
    return y;
  }

  Pool2dGeometry g_;
  Device device_;
  Tensor x_, dy_;
  std::vector<int64_t> argmax_, count_;
};

TEST_P(Pool2dTest, ForwardTraining) {
  SKIP_WITHOUT_KERNEL(ops::pool2d_forward, device_);
  Tensor y = nan_output(y_shape()), workspace;
  ops::pool2d_forward(g_, on(device_, x_), y, workspace, /*training=*/true);
  // A max is a copy of one input: it must be exact.
  EXPECT_TRUE(ref::matches(y, forward_reference(),
                           g_.kind == PoolKind::kMax ? ref::kExact : ref::Tolerance{}));
}

TEST_P(Pool2dTest, ForwardInference) {
  SKIP_WITHOUT_KERNEL(ops::pool2d_forward, device_);
  Tensor y = nan_output(y_shape()), workspace;
  ops::pool2d_forward(g_, on(device_, x_), y, workspace, /*training=*/false);
  EXPECT_TRUE(ref::matches(y, forward_reference(),
                           g_.kind == PoolKind::kMax ? ref::kExact : ref::Tolerance{}));
}

TEST_P(Pool2dTest, Backward) {
  SKIP_WITHOUT_KERNEL(ops::pool2d_forward, device_);
  SKIP_WITHOUT_KERNEL(ops::pool2d_backward, device_);
  Tensor y = nan_output(y_shape()), workspace;
  ops::pool2d_forward(g_, on(device_, x_), y, workspace, /*training=*/true);
  Tensor dx = nan_output(x_shape());
  ops::pool2d_backward(g_, on(device_, dy_), workspace, dx);
  Expected want(x_shape().numel());
  const float* dy = dy_.f32();
  if (g_.kind == PoolKind::kMax) {
    for (int64_t i = 0; i < y_shape().numel(); ++i) want.add(argmax_[i], dy[i]);
  } else {
    for_each_window_element(g_, [&](int64_t yi, int64_t xi) {
      want.add(xi, static_cast<double>(dy[yi]) / count_[static_cast<size_t>(yi)]);
    });
  }
  EXPECT_TRUE(ref::matches(dx, want));
}

// On the CPU x and y (dy and dx) may both be bf16 activations: the same pooling of their
// values. x holds distinct bf16 values (so the max is unambiguous), dy bf16-rounded ones.
// A max is exact and an average rounds once; the backward's dx rounds once per window
// that covers an element, because oneDNN adds overlapping windows' gradients in bf16.
TEST_P(Pool2dTest, Bf16TensorsPoolTheirValues) {
  if (!device_.is_cpu()) GTEST_SKIP() << "bf16 activations are pooled on the CPU only";
  const ops::CpuBf16Support bf16 = ops::cpu_bf16_support();
  if (!bf16.native) GTEST_SKIP() << "no native bf16 on this CPU (oneDNN's ISA: " << bf16.isa << ")";
  // Every bf16 of either sign with a magnitude in [2^-31, 2^33): distinct, and far from
  // float32 overflow when a window is summed.
  std::vector<uint16_t> patterns;
  for (uint32_t b = 0x3000; b < 0x5000; ++b) {
    patterns.push_back(static_cast<uint16_t>(b));
    patterns.push_back(static_cast<uint16_t>(b | 0x8000u));
  }
  ASSERT_LE(x_.numel(), static_cast<int64_t>(patterns.size()));
  std::mt19937 shuffle(9);
  std::shuffle(patterns.begin(), patterns.end(), shuffle);
  for (int64_t i = 0; i < x_.numel(); ++i) {
    const uint32_t bits = static_cast<uint32_t>(patterns[static_cast<size_t>(i)]) << 16;
    std::memcpy(x_.f32() + i, &bits, sizeof bits);
  }
  argmax_ = argmax_of(g_, x_);
  dy_ = ref::bf16_rounded(dy_);
  const ref::Tolerance rounded_once{1.0 / 256, 1e-30};  // half a step: 2^-8 relative at worst
  std::vector<int> windows(static_cast<size_t>(x_.numel()), 0);
  for_each_window_element(g_, [&](int64_t, int64_t xi) { ++windows[static_cast<size_t>(xi)]; });
  const int overlap = *std::max_element(windows.begin(), windows.end());
  const ref::Tolerance rounded_per_window{(overlap + 1) / 256.0, 1e-30};
  Tensor y = Tensor::empty(y_shape(), Device::cpu(), DType::kBFloat16), workspace;
  ops::pool2d_forward(g_, ref::stored_as(x_, DType::kBFloat16), y, workspace, true);
  EXPECT_TRUE(ref::matches(y, forward_reference(),
                           g_.kind == PoolKind::kMax ? ref::kExact : rounded_once))
      << "forward";
  Tensor dx = Tensor::empty(x_shape(), Device::cpu(), DType::kBFloat16);
  ops::pool2d_backward(g_, ref::stored_as(dy_, DType::kBFloat16), workspace, dx);
  Expected want(x_shape().numel());
  if (g_.kind == PoolKind::kMax) {
    for (int64_t i = 0; i < y_shape().numel(); ++i) want.add(argmax_[i], dy_.f32()[i]);
  } else {
    for_each_window_element(g_, [&](int64_t yi, int64_t xi) {
      want.add(xi, static_cast<double>(dy_.f32()[yi]) / count_[static_cast<size_t>(yi)]);
    });
  }
  EXPECT_TRUE(ref::matches(dx, want, rounded_per_window)) << "backward, " << overlap
                                                          << " windows per element at most";
  // One of each dtype is refused, naming the op.
  Tensor y32 = Tensor::empty(y_shape());
  EXPECT_THROW(ops::pool2d_forward(g_, ref::stored_as(x_, DType::kBFloat16), y32, workspace, true),
               Error);
}

// The workspace is the caller's: a backward must follow the forward it was given, not
// whichever forward of the same geometry ran last.
class MaxPool2dTest : public ::testing::TestWithParam<Device> {};

TEST_P(MaxPool2dTest, BackwardUsesItsOwnWorkspace) {
  const Device device = GetParam();
  SKIP_WITHOUT_KERNEL(ops::pool2d_forward, device);
  SKIP_WITHOUT_KERNEL(ops::pool2d_backward, device);
  for (const PoolCase& pc : cases()) {
    SCOPED_TRACE(pc.name);
    Pool2dGeometry g = pc.g;
    g.kind = PoolKind::kMax;
    const Shape x_shape{g.batch, g.in_h, g.in_w, g.channels};
    const Shape y_shape{g.batch, g.out_h, g.out_w, g.channels};
    ref::Rng rng(7);
    const Tensor x = ref::distinct_tensor(x_shape, rng), dy = ref::uniform_tensor(y_shape, rng);
    const Tensor other_x = ref::distinct_tensor(x_shape, rng);
    Tensor y = on(device, ref::nan_tensor(y_shape)), workspace, other_workspace;
    ops::pool2d_forward(g, on(device, x), y, workspace, /*training=*/true);
    ops::pool2d_forward(g, on(device, other_x), y, other_workspace, /*training=*/true);
    Tensor dx = on(device, ref::nan_tensor(x_shape));
    ops::pool2d_backward(g, on(device, dy), workspace, dx);
    const std::vector<int64_t> argmax = argmax_of(g, x);
    Expected want(x_shape.numel());
    for (int64_t i = 0; i < y_shape.numel(); ++i) want.add(argmax[i], dy.f32()[i]);
    EXPECT_TRUE(ref::matches(dx, want));
  }
}

INSTANTIATE_ON_OP_TEST_DEVICES(MaxPool2dTest);

std::string param_name(const ::testing::TestParamInfo<PoolParam>& info) {
  return std::get<0>(info.param).name +
         (std::get<1>(info.param) == PoolKind::kMax ? "Max" : "Average") + "_" +
         device_name(std::get<2>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Geometries, Pool2dTest,
                         ::testing::Combine(::testing::ValuesIn(cases()),
                                            ::testing::Values(PoolKind::kMax,
                                                              PoolKind::kAverage),
                                            ::testing::ValuesIn(op_test::op_test_devices())),
                         param_name);

}  // namespace
}  // namespace residual
