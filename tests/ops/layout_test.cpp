// Data-movement ops (zero_pad2d, shortcut_pad, concat): every element is a copy or a
// zero, so results must match the reference bit for bit. Outputs start as NaN, so a
// padding element the op leaves unwritten fails too. Every case runs on every device.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;
using ref::Expected;

int64_t nhwc(const Shape& s, int64_t n, int64_t h, int64_t w, int64_t c) {
  return ((n * s[1] + h) * s[2] + w) * s[3] + c;
}

// Wraps the op's struct so gtest prints it readably (PrintTo is found next to PadCase).
struct PadCase {
  ops::Padding2d p;
  std::vector<int64_t> x_dims;
};

void PrintTo(const PadCase& c, std::ostream* out) {
  *out << Shape(c.x_dims).str() << " padded top " << c.p.top << ", bottom " << c.p.bottom
       << ", left " << c.p.left << ", right " << c.p.right;
}

// Param: (case, device); inputs and references on the host, the op on the device.
class ZeroPad2dTest : public ::testing::TestWithParam<WithDevice<PadCase>> {};

TEST_P(ZeroPad2dTest, ForwardAndBackward) {
  const auto& [pc, device] = GetParam();
  SKIP_WITHOUT_KERNELS(device, ops::zero_pad2d_forward, ops::zero_pad2d_backward);
  const ops::Padding2d p = pc.p;
  ref::Rng rng(3);
  const Shape xs(pc.x_dims);
  const Shape ys{xs[0], xs[1] + p.top + p.bottom, xs[2] + p.left + p.right, xs[3]};
  Tensor x = ref::uniform_tensor(xs, rng), dy = ref::uniform_tensor(ys, rng);
  Tensor y = on(device, ref::nan_tensor(ys)), dx = on(device, ref::nan_tensor(xs));
  ops::zero_pad2d_forward(p, on(device, x), y);
  ops::zero_pad2d_backward(p, on(device, dy), dx);
  Expected want_y(ys.numel()), want_dx(xs.numel());
  for (int64_t n = 0; n < xs[0]; ++n) {
    for (int64_t h = 0; h < xs[1]; ++h) {
      for (int64_t w = 0; w < xs[2]; ++w) {
        for (int64_t c = 0; c < xs[3]; ++c) {
          const int64_t xi = nhwc(xs, n, h, w, c), yi = nhwc(ys, n, h + p.top, w + p.left, c);
          want_y.add(yi, x.f32()[xi]);
          want_dx.add(xi, dy.f32()[yi]);
        }
      }
    }
  }
  EXPECT_TRUE(ref::matches(y, want_y, ref::kExact)) << "forward";
  EXPECT_TRUE(ref::matches(dx, want_dx, ref::kExact)) << "backward";
}

// The default input is small; {4, 9, 7, 33} passes the kernels' single-thread cutoff.
PadCase padding(int64_t top, int64_t bottom, int64_t left, int64_t right,
                std::vector<int64_t> x_dims = {2, 4, 5, 3}) {
  PadCase c;
  c.x_dims = std::move(x_dims);
  c.p.top = top;
  c.p.bottom = bottom;
  c.p.left = left;
  c.p.right = right;
  return c;
}

std::string padding_name(const ::testing::TestParamInfo<PadCase>& info) {
  const ops::Padding2d& p = info.param.p;
  return "T" + std::to_string(p.top) + "B" + std::to_string(p.bottom) + "L" +
         std::to_string(p.left) + "R" + std::to_string(p.right) + "N" +
         std::to_string(info.param.x_dims[0]);
}

std::string padding_device_name(const ::testing::TestParamInfo<WithDevice<PadCase>>& info) {
  return op_test::with_device_name(info, padding_name);
}

INSTANTIATE_TEST_SUITE_P(Paddings, ZeroPad2dTest,
                         op_test::with_every_device(::testing::Values(
                             padding(1, 2, 0, 3), padding(0, 0, 2, 1), padding(3, 1, 1, 0),
                             padding(1, 1, 1, 1), padding(0, 0, 0, 0),
                             padding(2, 1, 1, 2, {4, 9, 7, 33}))),
                         padding_device_name);

struct ShortcutCase {
  int64_t stride, pad_before, pad_after;
  int64_t batch = 2, channels = 5;  // 4 x 33 passes the kernels' single-thread cutoff
};

void PrintTo(const ShortcutCase& c, std::ostream* out) {
  *out << "stride " << c.stride << ", pad " << c.pad_before << " / " << c.pad_after << ", "
       << c.batch << " x " << c.channels;
}

// Param: (case, device); inputs and references on the host, the op on the device.
class ShortcutPadTest : public ::testing::TestWithParam<WithDevice<ShortcutCase>> {};

TEST_P(ShortcutPadTest, ForwardAndBackward) {
  const auto& [sc, device] = GetParam();
  SKIP_WITHOUT_KERNELS(device, ops::shortcut_pad_forward, ops::shortcut_pad_backward);
  ref::Rng rng(4);
  const Shape xs{sc.batch, 7, 6, sc.channels};
  // x[:, ::stride, ::stride, :] keeps ceil(size / stride) rows and columns.
  const Shape ys{sc.batch, (7 + sc.stride - 1) / sc.stride, (6 + sc.stride - 1) / sc.stride,
                 sc.channels + sc.pad_before + sc.pad_after};
  Tensor x = ref::uniform_tensor(xs, rng), dy = ref::uniform_tensor(ys, rng);
  Tensor y = on(device, ref::nan_tensor(ys)), dx = on(device, ref::nan_tensor(xs));
  ops::shortcut_pad_forward(sc.stride, sc.pad_before, sc.pad_after, on(device, x), y);
  ops::shortcut_pad_backward(sc.stride, sc.pad_before, sc.pad_after, on(device, dy), dx);
  Expected want_y(ys.numel()), want_dx(xs.numel());
  for (int64_t n = 0; n < ys[0]; ++n) {
    for (int64_t h = 0; h < ys[1]; ++h) {
      for (int64_t w = 0; w < ys[2]; ++w) {
        for (int64_t c = 0; c < xs[3]; ++c) {
          const int64_t xi = nhwc(xs, n, h * sc.stride, w * sc.stride, c);
          const int64_t yi = nhwc(ys, n, h, w, c + sc.pad_before);
          want_y.add(yi, x.f32()[xi]);
          want_dx.add(xi, dy.f32()[yi]);
        }
      }
    }
  }
  EXPECT_TRUE(ref::matches(y, want_y, ref::kExact)) << "forward";
  EXPECT_TRUE(ref::matches(dx, want_dx, ref::kExact)) << "backward";
}

// On the CPU x, y, dy and dx may each be bf16 (activations and their gradients under mixed
// precision): every element is still a copy (the float32 values are bf16-representable
// here, so the conversions are exact too).
TEST(ShortcutPadBf16Test, EveryDtypePairCopiesTheValues) {
  ref::Rng rng(5);
  const Shape xs{4, 7, 6, 33}, ys{4, 4, 3, 33 + 3 + 4};
  const Tensor x32 = ref::bf16_rounded(ref::uniform_tensor(xs, rng));
  const Tensor dy32 = ref::bf16_rounded(ref::uniform_tensor(ys, rng));
  Tensor want_y = Tensor::empty(ys), want_dx = Tensor::empty(xs);
  ops::shortcut_pad_forward(2, 3, 4, x32, want_y);
  ops::shortcut_pad_backward(2, 3, 4, dy32, want_dx);
  for (DType in : {DType::kFloat32, DType::kBFloat16}) {
    for (DType out : {DType::kFloat32, DType::kBFloat16}) {
      Tensor y = Tensor::empty(ys, Device::cpu(), out), dx = Tensor::empty(xs, Device::cpu(), out);
      ops::shortcut_pad_forward(2, 3, 4, ref::stored_as(x32, in), y);
      ops::shortcut_pad_backward(2, 3, 4, ref::stored_as(dy32, in), dx);
      EXPECT_EQ(ref::to_double(y), ref::to_double(want_y))
          << "forward " << dtype_name(in) << " -> " << dtype_name(out);
      EXPECT_EQ(ref::to_double(dx), ref::to_double(want_dx))
          << "backward " << dtype_name(in) << " -> " << dtype_name(out);
    }
  }
}

std::string shortcut_name(const ::testing::TestParamInfo<ShortcutCase>& info) {
  const ShortcutCase& c = info.param;
  return "Stride" + std::to_string(c.stride) + "Before" + std::to_string(c.pad_before) +
         "After" + std::to_string(c.pad_after) + "N" + std::to_string(c.batch);
}

std::string shortcut_device_name(const ::testing::TestParamInfo<WithDevice<ShortcutCase>>& info) {
  return op_test::with_device_name(info, shortcut_name);
}

INSTANTIATE_TEST_SUITE_P(Strides, ShortcutPadTest,
                         op_test::with_every_device(::testing::Values(
                             ShortcutCase{2, 3, 5}, ShortcutCase{1, 0, 4}, ShortcutCase{2, 2, 2},
                             ShortcutCase{3, 1, 0}, ShortcutCase{2, 4, 4, 4, 33})),
                         shortcut_device_name);

// Inputs and references on the host (xs, dy); the op runs on `device`.
void check_concat(Device device, const std::vector<int64_t>& lead,
                  const std::vector<int64_t>& channels) {
  SKIP_WITHOUT_KERNELS(device, ops::concat_forward, ops::concat_backward);
  ref::Rng rng(static_cast<unsigned>(channels.size()));
  int64_t rows = 1, total = 0;
  for (int64_t d : lead) rows *= d;
  for (int64_t c : channels) total += c;
  auto shape_with = [&](int64_t c) {
    std::vector<int64_t> dims = lead;
    dims.push_back(c);
    return Shape(dims);
  };
  std::vector<Tensor> xs, xs_on, dxs;
  std::vector<const Tensor*> x_ptrs;
  std::vector<Tensor*> dx_ptrs;
  for (int64_t c : channels) {
    xs.push_back(ref::uniform_tensor(shape_with(c), rng));
    xs_on.push_back(on(device, xs.back()));
    dxs.push_back(on(device, ref::nan_tensor(shape_with(c))));
  }
  for (size_t k = 0; k < channels.size(); ++k) {
    x_ptrs.push_back(&xs_on[k]);
    dx_ptrs.push_back(&dxs[k]);
  }
  Tensor y = on(device, ref::nan_tensor(shape_with(total)));
  Tensor dy = ref::uniform_tensor(shape_with(total), rng);
  ops::concat_forward(x_ptrs, y);
  ops::concat_backward(on(device, dy), dx_ptrs);
  Expected want_y(y.numel());
  int64_t offset = 0;
  for (size_t k = 0; k < channels.size(); ++k) {
    const int64_t c = channels[k];
    Expected want_dx(rows * c);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < c; ++i) {
        want_y.add(r * total + offset + i, xs[k].f32()[r * c + i]);
        want_dx.add(r * c + i, dy.f32()[r * total + offset + i]);
      }
    }
    EXPECT_TRUE(ref::matches(dxs[k], want_dx, ref::kExact)) << "backward, input " << k;
    offset += c;
  }
  EXPECT_TRUE(ref::matches(y, want_y, ref::kExact)) << "forward";
}

class ConcatTest : public ::testing::TestWithParam<Device> {};

TEST_P(ConcatTest, ThreeImageInputs) { check_concat(GetParam(), {2, 3, 4}, {3, 8, 5}); }
TEST_P(ConcatTest, TwoMatrixInputs) { check_concat(GetParam(), {5}, {7, 1}); }
TEST_P(ConcatTest, SingleInput) { check_concat(GetParam(), {2, 2, 3}, {6}); }
// 2^16 output elements: past the kernels' single-thread cutoff.
TEST_P(ConcatTest, LargeImageInputs) { check_concat(GetParam(), {4, 32, 32}, {3, 8, 5}); }

INSTANTIATE_ON_OP_TEST_DEVICES(ConcatTest);

}  // namespace
}  // namespace residual
