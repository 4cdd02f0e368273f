// cast (float32 <-> bfloat16) against bf16_nearest, a double-precision reference: every
// bit of the rounding (ties to even, overflow to infinity, NaN kept), then the exact way
// back. Runs on every device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Specials, ties both ways, the largest values, subnormals, then random magnitudes.
std::vector<float> cast_inputs() {
  std::vector<float> v = {
      0.f, -0.f, 1.f, -1.f,
      from_bits(0x3f808000u),  // 1 + 2^-8: a tie between 1 (even) and the next: to 1
      from_bits(0x3f818000u),  // a tie whose lower neighbour is odd: rounds up
      from_bits(0x3f808001u),  // just past a tie: up
      from_bits(0x3f807fffu),  // just before a tie: down
      from_bits(0xbf818000u),  // negative tie, odd below: away from zero
      from_bits(0x7f7fffffu),  // the largest float: past the largest bf16, to infinity
      from_bits(0x7f7f7fffu),  // just under the halfway point: the largest bf16
      from_bits(0x00000001u),  // the smallest subnormal: to 0
      from_bits(0x00018000u),  // a subnormal tie with an odd lower neighbour: up
      std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::quiet_NaN(), from_bits(0x7f800001u),  // a signalling NaN
      from_bits(0xffc00001u)};
  ref::Rng rng(7);
  std::uniform_int_distribution<uint32_t> any_bits;
  // Random bit patterns cover every exponent; more than 2^15 elements so the CPU kernel
  // runs its multi-threaded loop too.
  while (v.size() < 70000) {
    const float f = from_bits(any_bits(rng));
    if (!std::isnan(f)) v.push_back(f);
  }
  return v;
}

class CastTest : public ::testing::TestWithParam<Device> {};

TEST_P(CastTest, ToBf16RoundsToNearestEvenAndBackIsExact) {
  SKIP_WITHOUT_KERNEL(ops::cast, GetParam());
  const std::vector<float> inputs = cast_inputs();
  const int64_t n = static_cast<int64_t>(inputs.size());
  Tensor host = Tensor::empty(Shape{n});
  std::memcpy(host.f32(), inputs.data(), inputs.size() * sizeof(float));
  Tensor bf16;
  ops::cast_to(DType::kBFloat16, on(GetParam(), host), bf16);
  ASSERT_EQ(bf16.dtype(), DType::kBFloat16);
  ASSERT_EQ(bf16.device(), GetParam());
  Tensor back;
  ops::cast_to(DType::kFloat32, bf16, back);
  const Tensor got = ref::host_copy(back);
  const Tensor got_bf16 = ref::host_copy(bf16);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float want = ref::bf16_nearest(inputs[i]);
    const float value = got.f32()[i];
    // The float32 read back is exactly the 16 stored bits, shifted up.
    const uint16_t stored = got_bf16.data<uint16_t>()[i];
    const bool exact_back = bits_of(value) == static_cast<uint32_t>(stored) << 16;
    const bool right = std::isnan(want) ? std::isnan(value) : bits_of(value) == bits_of(want);
    if (right && exact_back) continue;
    if (++bad <= 5) {
      ADD_FAILURE() << "element " << i << ": " << std::hexfloat << inputs[i] << " (0x"
                    << std::hex << bits_of(inputs[i]) << ") cast to 0x" << stored
                    << ", read back 0x" << bits_of(value) << "; want 0x" << bits_of(want);
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(CastTest, EmptyTensorIsANoOp) {
  SKIP_WITHOUT_KERNEL(ops::cast, GetParam());
  Tensor empty = on(GetParam(), Tensor::empty(Shape{0, 3}));
  Tensor out;
  ops::cast_to(DType::kBFloat16, empty, out);
  EXPECT_EQ(out.shape(), Shape({0, 3}));
}

TEST(CastErrorTest, MismatchedCountsAndTypesAreErrors) {
  Tensor x = Tensor::zeros(Shape{4});
  Tensor small = Tensor::empty(Shape{3}, Device::cpu(), DType::kBFloat16);
  EXPECT_THROW(ops::cast(x, small), Error);
  Tensor ints = Tensor::empty(Shape{4}, Device::cpu(), DType::kInt32);
  try {
    ops::cast(x, ints);
    FAIL() << "float32 -> int32 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not float32 <-> bfloat16"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, CastTest, ::testing::ValuesIn(op_test::op_test_devices()),
                         op_test::device_param_name);

}  // namespace
}  // namespace residual
