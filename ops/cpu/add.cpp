// Sum of same-shaped tensors (the Add layer, residual joins, gradient sums), with the
// block's closing ReLU fused in: one pass over every input and the output. Inputs and
// output may each be float32 or bfloat16 (activations under mixed precision); the sum is
// taken in float, left to right, ((x0 + x1) + x2) + ..., and rounded once on the store.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/element_access.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {
namespace {

// Elements summed per block in a float buffer that stays in L1.
constexpr int64_t kBlock = 2048;

// An input as either dtype: exactly one pointer is set.
struct Summand {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
};

void accumulate(const Summand& s, int64_t offset, int64_t count, bool first, float* sum) {
  if (s.f32) {
    const float* p = s.f32 + offset;
    if (first) {
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) sum[i] = p[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) sum[i] += p[i];
    }
  } else {
    const uint16_t* p = s.bf16 + offset;
    if (first) {
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) sum[i] = from_bf16_bits(p[i]);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) sum[i] += from_bf16_bits(p[i]);
    }
  }
}

template <typename Y>
void store(const float* sum, int64_t offset, int64_t count, bool relu, Y y) {
  if (relu) {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) y.set(offset + i, sum[i] > 0.f ? sum[i] : 0.f);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) y.set(offset + i, sum[i]);
  }
}

}  // namespace

void add_forward(const std::vector<const Tensor*>& xs, bool relu, Tensor& y) {
  RESIDUAL_CHECK(!xs.empty(), "add_forward: no inputs");
  const int64_t n = y.numel();
  std::vector<Summand> summands(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    RESIDUAL_CHECK(xs[k]->numel() == n, "add_forward: input ", k, " has ", xs[k]->numel(),
                   " elements, the output ", n);
    if (xs[k]->dtype() == DType::kBFloat16) {
      summands[k].bf16 = xs[k]->data<uint16_t>();
    } else {
      summands[k].f32 = xs[k]->f32();  // checks the dtype
    }
  }
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  with_writer(y, "add_forward", [&](auto out) {
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
    for (int64_t b = 0; b < blocks; ++b) {
      alignas(64) float sum[kBlock];
      const int64_t offset = b * kBlock, count = std::min(kBlock, n - offset);
      for (size_t k = 0; k < summands.size(); ++k) {
        accumulate(summands[k], offset, count, k == 0, sum);
      }
      store(sum, offset, count, relu, out);
    }
  });
}

}  // namespace residual::ops::cpu
