// conv2d forward / backward-data / backward-weights (oneDNN) against naive double loops
// over many geometries: the layout conventions (NHWC activations, O x I/groups x kH x kW
// kernels), asymmetric padding, groups and dilation are where a plumbing slip hides.
// Every geometry runs on every device.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;
using ops::Conv2dGeometry;
using ref::Expected;

struct ConvCase {
  std::string name;
  Conv2dGeometry g;

  ConvCase stride(int64_t h, int64_t w) const {
    ConvCase c = *this;
    c.g.stride_h = h;
    c.g.stride_w = w;
    return c.sized();
  }
  ConvCase dilation(int64_t h, int64_t w) const {
    ConvCase c = *this;
    c.g.dilation_h = h;
    c.g.dilation_w = w;
    return c.sized();
  }
  ConvCase pad(int64_t top, int64_t bottom, int64_t left, int64_t right) const {
    ConvCase c = *this;
    c.g.pad_top = top;
    c.g.pad_bottom = bottom;
    c.g.pad_left = left;
    c.g.pad_right = right;
    return c.sized();
  }
  ConvCase groups(int64_t n) const {
    ConvCase c = *this;
    c.g.groups = n;
    return c;
  }
  // out = (in + pads - dilation * (k - 1) - 1) / stride + 1, floor as oneDNN and Keras.
  ConvCase sized() const {
    ConvCase c = *this;
    c.g.out_h = (g.in_h + g.pad_top + g.pad_bottom - g.dilation_h * (g.kernel_h - 1) - 1) /
                    g.stride_h + 1;
    c.g.out_w = (g.in_w + g.pad_left + g.pad_right - g.dilation_w * (g.kernel_w - 1) - 1) /
                    g.stride_w + 1;
    return c;
  }
};

// gtest prints parameters on failure; the name says it all.
void PrintTo(const ConvCase& c, std::ostream* out) { *out << c.name; }

ConvCase conv_case(std::string name, int64_t batch, int64_t in_h, int64_t in_w, int64_t in_c,
                   int64_t out_c, int64_t kernel_h, int64_t kernel_w) {
  ConvCase c;
  c.name = std::move(name);
  c.g.batch = batch;
  c.g.in_h = in_h;
  c.g.in_w = in_w;
  c.g.in_c = in_c;
  c.g.out_c = out_c;
  c.g.kernel_h = kernel_h;
  c.g.kernel_w = kernel_w;
  return c.sized();
}

// Channel counts are deliberately not multiples of 16 (oneDNN's blocking) and the
// spatial sizes odd or non-square, so a swapped H/W or a blocked-layout leak shows.
const std::vector<ConvCase>& cases() {
  static const std::vector<ConvCase> all = {
      conv_case("Odd7x5Same3x3", 2, 7, 5, 3, 5, 3, 3).pad(1, 1, 1, 1),
      conv_case("Pointwise", 2, 6, 5, 17, 33, 1, 1),
      conv_case("PointwiseStride2", 2, 7, 6, 5, 9, 1, 1).stride(2, 2),
      conv_case("Stem7x7Stride2", 1, 11, 9, 3, 8, 7, 7).stride(2, 2).pad(3, 3, 3, 3),
      // TensorFlow 'same' for 3x3 stride 2 on 9 x 8: rows pad 1/1, columns 0/1.
      conv_case("Stride2SameAsym", 3, 9, 8, 6, 10, 3, 3).stride(2, 2).pad(1, 1, 0, 1),
      conv_case("Valid3x3Stride2", 2, 9, 7, 4, 6, 3, 3).stride(2, 2),
      // TensorFlow 'same' with even kernels pads less before than after.
      conv_case("Even2x2Same", 2, 7, 5, 5, 7, 2, 2).pad(0, 1, 0, 1),
      conv_case("Even4x4Same", 2, 7, 6, 3, 4, 4, 4).pad(1, 2, 1, 2),
      conv_case("Even4x4Stride2Same", 2, 9, 7, 6, 5, 4, 4).stride(2, 2).pad(1, 2, 1, 2),
      conv_case("Rect3x5StrideRect", 2, 7, 9, 4, 6, 3, 5).stride(1, 2),
      conv_case("Groups2", 2, 7, 5, 6, 10, 3, 3).pad(1, 1, 1, 1).groups(2),
      conv_case("Groups4Stride2", 2, 8, 7, 20, 12, 3, 3).stride(2, 2).pad(0, 1, 1, 1).groups(4),
      conv_case("Depthwise", 2, 7, 6, 18, 18, 3, 3).pad(1, 1, 1, 1).groups(18),
      conv_case("DepthwiseMultiplier2", 1, 9, 7, 7, 14, 5, 5).pad(2, 2, 2, 2).groups(7),
      conv_case("DepthwiseStride2", 2, 8, 8, 5, 5, 3, 3).stride(2, 2).pad(0, 1, 0, 1).groups(5),
      conv_case("Dilation2", 2, 9, 7, 4, 6, 3, 3).dilation(2, 2).pad(2, 2, 2, 2),
      conv_case("Dilation2x1Valid", 1, 9, 8, 3, 5, 3, 2).dilation(2, 1),
      conv_case("Batch4Channels19", 4, 5, 6, 19, 23, 3, 3).pad(1, 1, 1, 1),
      // Full 16-lane channel blocks, as real networks use: oneDNN's fast paths.
      conv_case("Channels32To64Stride2", 2, 9, 8, 32, 64, 3, 3).stride(2, 2).pad(1, 1, 0, 1),
      // Pointwise with 32+ channels: bf16 runs its backward as matrix products.
      conv_case("Pointwise32To48", 3, 5, 3, 32, 48, 1, 1),
      conv_case("Pointwise64To32", 2, 4, 4, 64, 32, 1, 1),
      // Strided pointwise with 32+ channels: bf16 runs its backward as gather + matmul.
      conv_case("Pointwise48To64Stride2", 2, 7, 6, 48, 64, 1, 1).stride(2, 2),
  };
  return all;
}

// Calls fn(y_index, x_index, w_index, out_channel) for every multiply of the convolution
// (taps that land in the padding are skipped).
template <typename Fn>
void for_each_tap(const Conv2dGeometry& g, Fn&& fn) {
  const int64_t cin_g = g.in_c / g.groups, cout_g = g.out_c / g.groups;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        for (int64_t co = 0; co < g.out_c; ++co) {
          const int64_t yi = ((n * g.out_h + oh) * g.out_w + ow) * g.out_c + co;
          const int64_t first_c = (co / cout_g) * cin_g;
          for (int64_t ci = 0; ci < cin_g; ++ci) {
            for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
              const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
              if (ih < 0 || ih >= g.in_h) continue;
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
                if (iw < 0 || iw >= g.in_w) continue;
                const int64_t xi = ((n * g.in_h + ih) * g.in_w + iw) * g.in_c + first_c + ci;
                const int64_t wi = ((co * cin_g + ci) * g.kernel_h + kh) * g.kernel_w + kw;
                fn(yi, xi, wi, co);
              }
            }
          }
        }
      }
    }
  }
}

// Param: (geometry, device). x_, w_, bias_ and dy_ live on the host for the references;
// the ops get copies on device_ (on(device_, x_)) and write outputs made there.
class Conv2dTest : public ::testing::TestWithParam<WithDevice<ConvCase>> {
 protected:
  void SetUp() override {
    device_ = std::get<1>(GetParam());
    const Conv2dGeometry& g = std::get<0>(GetParam()).g;
    ASSERT_GT(g.out_h, 0);
    ASSERT_GT(g.out_w, 0);
    ref::Rng rng(1234);
    x_ = ref::uniform_tensor(x_shape(), rng);
    w_ = ref::uniform_tensor(w_shape(), rng);
    bias_ = ref::uniform_tensor(Shape{g.out_c}, rng);
    dy_ = ref::uniform_tensor(y_shape(), rng);
  }

  const Conv2dGeometry& g() const { return std::get<0>(GetParam()).g; }
  Tensor nan_output(const Shape& shape) const { return on(device_, ref::nan_tensor(shape)); }
  Shape x_shape() const { return Shape{g().batch, g().in_h, g().in_w, g().in_c}; }
  Shape y_shape() const { return Shape{g().batch, g().out_h, g().out_w, g().out_c}; }
  Shape w_shape() const {
    return Shape{g().out_c, g().in_c / g().groups, g().kernel_h, g().kernel_w};
  }

  Expected forward_reference(bool with_bias) const {
    Expected y(y_shape().numel());
    const float *x = x_.f32(), *w = w_.f32();
    for_each_tap(g(), [&](int64_t yi, int64_t xi, int64_t wi, int64_t) {
      y.add(yi, static_cast<double>(x[xi]) * w[wi]);
    });
    if (with_bias) {
      for (int64_t i = 0; i < y_shape().numel(); ++i) y.add(i, bias_.f32()[i % g().out_c]);
    }
    return y;
  }

  void check_forward(bool with_bias) {
    SKIP_WITHOUT_KERNEL(ops::conv2d_forward, device_);
    Tensor y = nan_output(y_shape());
    const Tensor bias = on(device_, bias_);
    ops::conv2d_forward(g(), on(device_, x_), on(device_, w_), with_bias ? &bias : nullptr, y);
    EXPECT_TRUE(ref::matches(y, forward_reference(with_bias)));
  }

  void check_backward_weights(bool with_bias) {
    SKIP_WITHOUT_KERNEL(ops::conv2d_backward_weights, device_);
    Tensor dw = nan_output(w_shape());
    Tensor dbias = nan_output(Shape{g().out_c});
    ops::conv2d_backward_weights(g(), on(device_, x_), on(device_, dy_), dw,
                                 with_bias ? &dbias : nullptr);
    EXPECT_TRUE(ref::matches(dw, backward_weights_reference())) << "dw";
    if (with_bias) {
      EXPECT_TRUE(ref::matches(dbias, backward_bias_reference())) << "dbias";
    }
  }

  // Input pixels no tap reads (stride skips, 'valid' remainders) must get exact zeros.
  Expected backward_data_reference() const {
    Expected want(x_shape().numel());
    const float *dy = dy_.f32(), *w = w_.f32();
    for_each_tap(g(), [&](int64_t yi, int64_t xi, int64_t wi, int64_t) {
      want.add(xi, static_cast<double>(dy[yi]) * w[wi]);
    });
    return want;
  }
  Expected backward_weights_reference() const {
    Expected want(w_shape().numel());
    const float *x = x_.f32(), *dy = dy_.f32();
    for_each_tap(g(), [&](int64_t yi, int64_t xi, int64_t wi, int64_t) {
      want.add(wi, static_cast<double>(x[xi]) * dy[yi]);
    });
    return want;
  }
  Expected backward_bias_reference() const {
    Expected want(g().out_c);
    for (int64_t i = 0; i < y_shape().numel(); ++i) want.add(i % g().out_c, dy_.f32()[i]);
    return want;
  }

  Device device_;
  Tensor x_, w_, bias_, dy_;
};

TEST_P(Conv2dTest, ForwardWithBias) { check_forward(true); }

TEST_P(Conv2dTest, ForwardWithoutBias) { check_forward(false); }

TEST_P(Conv2dTest, BackwardData) {
  SKIP_WITHOUT_KERNEL(ops::conv2d_backward_data, device_);
  Tensor dx = nan_output(x_shape());
  ops::conv2d_backward_data(g(), on(device_, dy_), on(device_, w_), dx);
  EXPECT_TRUE(ref::matches(dx, backward_data_reference()));
}

TEST_P(Conv2dTest, BackwardWeightsAndBias) { check_backward_weights(true); }

TEST_P(Conv2dTest, BackwardWeightsWithoutBias) { check_backward_weights(false); }

// Mixed precision: bf16 x, w and dy, fp32 results. The operands are rounded to bf16 on
// the host first, so the double reference multiplies exactly what the kernel does; bf16
// products are exact in fp32, so only the fp32 accumulation differs and the float32
// tolerance holds. CPUs without native bf16 skip (the CLI refuses bf16 there).
TEST_P(Conv2dTest, Bf16OperandsAccumulateInFp32) {
  if (!device_.is_cpu()) GTEST_SKIP() << "bf16 convolutions run on the CPU only";
  const ops::CpuBf16Support bf16 = ops::cpu_bf16_support();
  if (!bf16.native) GTEST_SKIP() << "no native bf16 on this CPU (oneDNN's ISA: " << bf16.isa << ")";
  for (Tensor* t : {&x_, &w_, &dy_}) *t = ref::bf16_rounded(*t);
  Tensor x, w, dy;
  ops::cast_to(DType::kBFloat16, x_, x);
  ops::cast_to(DType::kBFloat16, w_, w);
  ops::cast_to(DType::kBFloat16, dy_, dy);
  Tensor y = nan_output(y_shape());
  ops::conv2d_forward(g(), x, w, &bias_, y);
  EXPECT_TRUE(ref::matches(y, forward_reference(true))) << "forward";
  Tensor dx = nan_output(x_shape());
  ops::conv2d_backward_data(g(), dy, w, dx);
  EXPECT_TRUE(ref::matches(dx, backward_data_reference())) << "backward data";
  Tensor dw = nan_output(w_shape()), dbias = nan_output(Shape{g().out_c});
  ops::conv2d_backward_weights(g(), x, dy, dw, &dbias);
  EXPECT_TRUE(ref::matches(dw, backward_weights_reference())) << "dw";
  EXPECT_TRUE(ref::matches(dbias, backward_bias_reference())) << "dbias";
  // Without a bias (pointwise geometries then take the matrix-product path).
  Tensor dw_alone = nan_output(w_shape());
  ops::conv2d_backward_weights(g(), x, dy, dw_alone, nullptr);
  EXPECT_TRUE(ref::matches(dw_alone, backward_weights_reference())) << "dw without a bias";
  // A bf16 output (for a consumer that reads bf16): the fp32 result rounded to bf16, so
  // within half a bf16 step (2^-9 relative) plus the fp32 accumulation error.
  Tensor y16 = Tensor::empty(y_shape(), Device::cpu(), DType::kBFloat16), y16_read;
  ops::conv2d_forward(g(), x, w, &bias_, y16);
  ops::cast_to(DType::kFloat32, y16, y16_read);
  EXPECT_TRUE(ref::matches(y16_read, forward_reference(true), ref::Tolerance{1.0 / 256, 1e-6}))
      << "forward into bf16";
  // A bf16 dx (the gradient of a bf16 activation), likewise; pointwise geometries take the
  // matrix-product path here.
  Tensor dx16 = Tensor::empty(x_shape(), Device::cpu(), DType::kBFloat16), dx16_read;
  ops::conv2d_backward_data(g(), dy, w, dx16);
  ops::cast_to(DType::kFloat32, dx16, dx16_read);
  EXPECT_TRUE(ref::matches(dx16_read, backward_data_reference(), ref::Tolerance{1.0 / 256, 1e-6}))
      << "backward data into bf16";
  // The same geometry in fp32 again: its plan is not the bf16 one.
  Tensor y32 = nan_output(y_shape());
  ops::conv2d_forward(g(), x_, w_, &bias_, y32);
  EXPECT_TRUE(ref::matches(y32, forward_reference(true))) << "fp32 after bf16";
}

// The primitive cache is keyed by geometry: a second call with new data must not reuse
// anything data-dependent from the first.
TEST_P(Conv2dTest, RepeatedCallsSeeNewData) {
  SKIP_WITHOUT_KERNEL(ops::conv2d_forward, device_);
  Tensor y = nan_output(y_shape());
  const Tensor bias = on(device_, bias_);
  ops::conv2d_forward(g(), on(device_, x_), on(device_, w_), &bias, y);
  ref::Rng rng(99);
  ref::fill_uniform(x_, rng);
  ref::fill_uniform(w_, rng);
  ops::conv2d_forward(g(), on(device_, x_), on(device_, w_), &bias, y);
  EXPECT_TRUE(ref::matches(y, forward_reference(true)));
}

std::string conv2d_case_name(const ::testing::TestParamInfo<ConvCase>& info) {
  return info.param.name;
}

std::string conv2d_case_device_name(const ::testing::TestParamInfo<WithDevice<ConvCase>>& info) {
  return op_test::with_device_name(info, conv2d_case_name);
}

TEST(Conv2dDtypeTest, MixedInputAndWeightTypesAreAnError) {
  const ConvCase c = conv_case("Pointwise", 1, 2, 2, 3, 4, 1, 1);
  const Tensor x = Tensor::zeros(Shape{1, 2, 2, 3});
  const Tensor w = Tensor::zeros(Shape{4, 3, 1, 1}, Device::cpu(), DType::kBFloat16);
  Tensor y = Tensor::empty(Shape{1, 2, 2, 4});
  try {
    ops::conv2d_forward(c.g, x, w, nullptr, y);
    FAIL() << "a float32 input with bfloat16 weights was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d_forward: a float32 input with bfloat16 weights"),
              std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Geometries, Conv2dTest,
                         op_test::with_every_device(::testing::ValuesIn(cases())),
                         conv2d_case_device_name);

}  // namespace
}  // namespace residual
