// Batch normalisation over N x H x W x C with the channel innermost: every pass is a
// stream over rows with a vectorised loop over channels. Statistics accumulate in double
// per thread and combine in thread order (deterministic for a given thread count).
// Our own kernel rather than oneDNN's: see docs/architecture.md.
// x, y, dy and dx may be bfloat16 (activations and their gradients under mixed precision,
// docs/architecture.md): every pass reads them widened to float (exact) and computes as
// for float32, and rounds y or dx once on its store (ops/cpu/element_access.h); the
// statistics stay float32 (double in the sums).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/element_access.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {
namespace {

constexpr int64_t kLanes = 16;      // one AVX-512 vector of floats
// Channels summed per sweep over the rows while that many remain: 32 bf16 channels fill a
// 64-byte cache line, where 16 used half of each line fetched and came back for the other
// half after the sweep (twice the memory traffic for bf16 rows that do not fit in cache).
// Each channel adds its rows in the same order whatever the group width, so the sums do
// not depend on it.
constexpr int64_t kWideLanes = 32;
constexpr int64_t kBlockRows = 64;  // rows summed in float before adding into double

// Calls fn with x's elements as a `const float*` or a Bf16Reader.
template <typename Fn>
void with_rows(const Tensor& x, Fn&& fn) {
  with_reader(x, "batch norm", fn);
}

// Calls fn with what a fused ReLU's mask reads: y's elements (float32 or bfloat16) under
// kRelu; without ReLU nothing is read and fn gets a null pointer as a stand-in.
template <bool kRelu, typename Fn>
void with_mask_rows(const Tensor& y, Fn&& fn) {
  if constexpr (kRelu) {
    with_rows(y, fn);
  } else {
    fn(static_cast<const float*>(nullptr));
  }
}

// Calls fn(yp, dyp, xp) with the backward's three inputs, each as a `const float*` or a
// Bf16Reader (yp only read under kRelu).
template <bool kRelu, typename Fn>
void with_backward_rows(const Tensor& x, const Tensor& y, const Tensor& dy, Fn&& fn) {
  with_mask_rows<kRelu>(y, [&](auto yp) {
    with_rows(dy, [&](auto dyp) { with_rows(x, [&](auto xp) { fn(yp, dyp, xp); }); });
  });
}

// Adds, for channels [c0, c0 + w) (w <= W), the sums over rows [begin, end) of the pair
// (a, b) that elem(r, i, a, b) accumulates into a[i] += ..., b[i] += .... Float
// accumulators that stay in registers (a read-modify-write of a partial array per row
// would chain every row on store-to-load latency), flushed to double every 64 rows so long
// reductions keep double precision.
// elem over rows [r0, r1) and channels [c0, c0 + w) into a[0, w) and b[0, w): vectorised
// over the channels when w is the full group width W.
template <int64_t W, typename Acc, typename Elem>
void accumulate_rows(int64_t r0, int64_t r1, int64_t c0, int64_t w, Elem& elem, Acc* a, Acc* b) {
  if (w == W) {
    for (int64_t r = r0; r < r1; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < W; ++i) elem(r, c0 + i, a[i], b[i]);
    }
  } else {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t i = 0; i < w; ++i) elem(r, c0 + i, a[i], b[i]);
    }
  }
}

template <int64_t W, typename Elem>
void sum_channel_group(int64_t begin, int64_t end, int64_t c0, int64_t w, Elem& elem,
                       double* a_out, double* b_out) {
  double ad[W] = {}, bd[W] = {};
  for (int64_t r0 = begin; r0 < end; r0 += kBlockRows) {
    const int64_t r1 = std::min(end, r0 + kBlockRows);
    float af[W] = {}, bf[W] = {};
    accumulate_rows<W>(r0, r1, c0, w, elem, af, bf);
    for (int64_t i = 0; i < w; ++i) {
      ad[i] += af[i];
      bd[i] += bf[i];
    }
  }
  for (int64_t i = 0; i < w; ++i) {
    a_out[c0 + i] += ad[i];
    b_out[c0 + i] += bd[i];
  }
}

// sum_channel_group over every channel: groups of 32 while they last, then of 16.
template <typename Elem>
void sum_rows(int64_t begin, int64_t end, int64_t c, Elem&& elem, double* a_out, double* b_out) {
  int64_t c0 = 0;
  for (; c - c0 >= kWideLanes; c0 += kWideLanes) {
    sum_channel_group<kWideLanes>(begin, end, c0, kWideLanes, elem, a_out, b_out);
  }
  for (; c0 < c; c0 += kLanes) {
    sum_channel_group<kLanes>(begin, end, c0, std::min(kLanes, c - c0), elem, a_out, b_out);
  }
}

// Per-channel sums over all rows, split over the threads and combined in thread order.
template <typename Elem>
void channel_sums(int64_t rows, int64_t c, std::vector<double>& s1, std::vector<double>& s2,
                  Elem&& elem) {
  const int threads = max_threads();
  std::vector<double> partial(static_cast<size_t>(threads) * 2 * c, 0.0);
  parallel_ranges(rows, rows * c, [&](int64_t begin, int64_t end, int t) {
    double* a = partial.data() + static_cast<size_t>(t) * 2 * c;
    sum_rows(begin, end, c, elem, a, a + c);
  });
  s1.assign(c, 0.0);
  s2.assign(c, 0.0);
  for (int t = 0; t < threads; ++t) {
    const double* a = partial.data() + static_cast<size_t>(t) * 2 * c;
    for (int64_t i = 0; i < c; ++i) {
      s1[i] += a[i];
      s2[i] += a[c + i];
    }
  }
}

template <typename X, typename Y>
void normalize(X x, const float* scale, const float* shift, bool relu, int64_t rows, int64_t c,
               Y y) {
  parallel_ranges(rows, rows * c, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * c;
      if (relu) {
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) {
          const float v = x[o + i] * scale[i] + shift[i];
          y.set(o + i, v > 0.f ? v : 0.f);
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) y.set(o + i, x[o + i] * scale[i] + shift[i]);
      }
    }
  });
}

// normalize() with x and y each float32 or bfloat16.
void normalize_tensor(const Tensor& x, const float* scale, const float* shift, bool relu,
                      Tensor& y) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  with_rows(x, [&](auto xp) {
    with_writer(y, "batch norm", [&](auto yw) { normalize(xp, scale, shift, relu, rows, c, yw); });
  });
}

}  // namespace

void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                 Tensor& batch_var) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  RESIDUAL_CHECK(rows > 0, "batch_norm_forward_training: the batch has no rows, so it has no "
                 "statistics (the layer skips empty batches)");
  // Sums of (x - k) and (x - k)^2 with k = the first row: E[x^2] - mean^2 would cancel
  // catastrophically when |mean| >> std.
  std::vector<float> first_row(static_cast<size_t>(c));
  std::vector<double> sum, sumsq;
  with_rows(x, [&](auto xp) {
    for (int64_t i = 0; i < c; ++i) first_row[i] = xp[i];
    const float* k = first_row.data();
    channel_sums(rows, c, sum, sumsq, [&](int64_t r, int64_t i, float& a, float& b) {
      const float d = xp[r * c + i] - k[i];
      a += d;
      b += d * d;
    });
  });
  const float* k = first_row.data();
  std::vector<float> scale(c), shift(c);
  float* mean = batch_mean.f32();
  float* var = batch_var.f32();
  for (int64_t i = 0; i < c; ++i) {
    const double shifted_mean = sum[i] / rows;
    const double m = shifted_mean + k[i];
    const double v = std::max(sumsq[i] / rows - shifted_mean * shifted_mean, 0.0);
    mean[i] = static_cast<float>(m);
    var[i] = static_cast<float>(v);
    const double s = gamma.f32()[i] / std::sqrt(v + epsilon);
    scale[i] = static_cast<float>(s);
    shift[i] = static_cast<float>(beta.f32()[i] - m * s);
  }
  normalize_tensor(x, scale.data(), shift.data(), relu, y);
}

void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& var, float epsilon,
                                  bool relu, Tensor& y) {
  const int64_t c = x.shape()[x.rank() - 1];
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    const double s = gamma.f32()[i] / std::sqrt(static_cast<double>(var.f32()[i]) + epsilon);
    scale[i] = static_cast<float>(s);
    shift[i] = static_cast<float>(beta.f32()[i] - mean.f32()[i] * s);
  }
  normalize_tensor(x, scale.data(), shift.data(), relu, y);
}

namespace {

// dx = k_dy * dy' + k_x * x + k_0 per channel, dy' = dy masked by y > 0 under kRelu.
template <bool kRelu>
void write_dx(const Tensor& x, const Tensor& y, const Tensor& dy, const float* kd,
              const float* kxp, const float* k0, Tensor& dx) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  with_backward_rows<kRelu>(x, y, dy, [&](auto yp, auto dyp, auto xp) {
    auto masked = [&](int64_t o) {
      const float d = dyp[o];  // loaded unconditionally, so the select is branch-free
      if constexpr (kRelu) return yp[o] > 0.f ? d : 0.f;
      return d;
    };
    with_writer(dx, "batch norm", [&](auto dxw) {
      parallel_ranges(rows, rows * c, [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t o = r * c;
#pragma omp simd
          for (int64_t i = 0; i < c; ++i) {
            dxw.set(o + i, kd[i] * masked(o + i) + kxp[i] * xp[o + i] + k0[i]);
          }
        }
      });
    });
  });
}

// The backward with the ReLU mask decided at compile time: a runtime flag guarding a load
// through a pointer that is null without ReLU keeps the compiler from vectorising.
template <bool kRelu>
void batch_norm_backward_impl(const Tensor& x, const Tensor& y, const Tensor& dy,
                              const Tensor& gamma, const Tensor& batch_mean,
                              const Tensor& batch_var, float epsilon, Tensor& dx,
                              Tensor& dgamma, Tensor& dbeta) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  const float* mean = batch_mean.f32();
  // sum_dy = sum(dy'), sum_dy_xc = sum(dy' * (x - mean)); dy' is dy masked by the ReLU.
  std::vector<double> sum_dy, sum_dy_xc;
  with_backward_rows<kRelu>(x, y, dy, [&](auto yp, auto dyp, auto xp) {
    auto masked = [&](int64_t o) {
      const float d = dyp[o];  // loaded unconditionally, so the select is branch-free
      if constexpr (kRelu) return yp[o] > 0.f ? d : 0.f;
      return d;
    };
    channel_sums(rows, c, sum_dy, sum_dy_xc, [&](int64_t r, int64_t i, float& a, float& b) {
      const int64_t o = r * c + i;
      const float g = masked(o);
      a += g;
      b += g * (xp[o] - mean[i]);
    });
  });
  // dx = gamma * inv_std * (dy' - mean(dy') - xhat * mean(dy' * xhat))
  //    = k_dy * dy' + k_x * x + k_0
  std::vector<float> k_dy(c), k_x(c), k_0(c);
  for (int64_t i = 0; i < c; ++i) {
    const double g = gamma.f32()[i];
    const double is = 1.0 / std::sqrt(static_cast<double>(batch_var.f32()[i]) + epsilon);
    dgamma.f32()[i] = static_cast<float>(sum_dy_xc[i] * is);
    dbeta.f32()[i] = static_cast<float>(sum_dy[i]);
    const double kx = -g * is * is * is * sum_dy_xc[i] / rows;
    k_dy[i] = static_cast<float>(g * is);
    k_x[i] = static_cast<float>(kx);
    k_0[i] = static_cast<float>(-g * is * sum_dy[i] / rows - kx * mean[i]);
  }
  write_dx<kRelu>(x, y, dy, k_dy.data(), k_x.data(), k_0.data(), dx);
}

}  // namespace

void batch_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                         const Tensor& gamma, const Tensor& batch_mean,
                         const Tensor& batch_var, float epsilon, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta) {
  if (relu) {
    batch_norm_backward_impl<true>(x, y, dy, gamma, batch_mean, batch_var, epsilon, dx, dgamma,
                                   dbeta);
  } else {
    batch_norm_backward_impl<false>(x, y, dy, gamma, batch_mean, batch_var, epsilon, dx, dgamma,
                                    dbeta);
  }
}

void batch_norm_update_running(const Tensor& batch_mean, const Tensor& batch_var,
                               int64_t count, float momentum, Tensor& running_mean,
                               Tensor& running_var) {
  const double unbias = count > 1 ? static_cast<double>(count) / (count - 1) : 1.0;
  for (int64_t i = 0; i < batch_mean.numel(); ++i) {
    running_mean.f32()[i] = static_cast<float>(momentum * running_mean.f32()[i] +
                                               (1.0 - momentum) * batch_mean.f32()[i]);
    running_var.f32()[i] = static_cast<float>(momentum * running_var.f32()[i] +
                                              (1.0 - momentum) * batch_var.f32()[i] * unbias);
  }
}

// ---- The split pieces for synchronised batch norm (ops/ops.h). Sums are plain (no shift)
// so that shards add up, which is why they accumulate in double from the first element:
// x^2 in a float block would lose the variance entirely when |mean| >> std, while in double
// sum(x^2) / n - mean^2 keeps ~16 - 2 * log10(|mean| / std) digits.

namespace {

// Writes, for channels [c0, c0 + w) (w <= W), the sums over rows [begin, end) in double
// accumulators to a_out and b_out.
template <int64_t W, typename Elem>
void sum_channel_group_f64(int64_t begin, int64_t end, int64_t c0, int64_t w, Elem& elem,
                           double* a_out, double* b_out) {
  double a[W] = {}, b[W] = {};
  accumulate_rows<W>(begin, end, c0, w, elem, a, b);
  for (int64_t i = 0; i < w; ++i) {
    a_out[c0 + i] = a[i];
    b_out[c0 + i] = b[i];
  }
}

// As channel_sums, but with double accumulators throughout, written to out[0, c) and
// out[c, 2c). elem(r, i, a, b) adds row r, channel i into the doubles a and b.
template <typename Elem>
void channel_sums_f64(int64_t rows, int64_t c, double* out, Elem&& elem) {
  const int threads = max_threads();
  std::vector<double> partial(static_cast<size_t>(threads) * 2 * c, 0.0);
  parallel_ranges(rows, rows * c, [&](int64_t begin, int64_t end, int t) {
    double* a_out = partial.data() + static_cast<size_t>(t) * 2 * c;
    double* b_out = a_out + c;
    int64_t c0 = 0;
    for (; c - c0 >= kWideLanes; c0 += kWideLanes) {
      sum_channel_group_f64<kWideLanes>(begin, end, c0, kWideLanes, elem, a_out, b_out);
    }
    for (; c0 < c; c0 += kLanes) {
      sum_channel_group_f64<kLanes>(begin, end, c0, std::min(kLanes, c - c0), elem, a_out,
                                    b_out);
    }
  });
  std::fill(out, out + 2 * c, 0.0);
  for (int t = 0; t < threads; ++t) {
    const double* a = partial.data() + static_cast<size_t>(t) * 2 * c;
    for (int64_t i = 0; i < 2 * c; ++i) out[i] += a[i];
  }
}

// d where y > 0, else 0, as integer operations on the bits (a float y is > 0 exactly when
// its bits read as an int32 are > 0): GCC 12 does not vectorise a float select feeding
// double accumulators (16 float lanes against 2 x 8 double lanes), and ran this loop 8x
// slower (1.7 vs 0.2 ms for 2M elements on one core); the bitwise form runs in 0.5 ms.
inline float masked_by_positive(float d, float y) {
  int32_t y_bits, d_bits;
  std::memcpy(&y_bits, &y, sizeof y_bits);
  std::memcpy(&d_bits, &d, sizeof d_bits);
  const int32_t g_bits = d_bits & -static_cast<int32_t>(y_bits > 0);
  float g;
  std::memcpy(&g, &g_bits, sizeof g);
  return g;
}

std::vector<double> inv_std(const Tensor& var, float epsilon) {
  std::vector<double> is(static_cast<size_t>(var.numel()));
  for (int64_t i = 0; i < var.numel(); ++i) {
    is[i] = 1.0 / std::sqrt(static_cast<double>(var.f32()[i]) + epsilon);
  }
  return is;
}

template <bool kRelu>
void backward_partial_sums_impl(const Tensor& x, const Tensor& y, const Tensor& dy,
                                const Tensor& mean, const Tensor& var, float epsilon,
                                double* sums) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  const float* mp = mean.f32();
  // sums = (sum dy', sum dy' * (x - mean)); the second is scaled to xhat after the pass.
  // x - mean in float as the fused backward; the product of two floats is exact in double.
  with_backward_rows<kRelu>(x, y, dy, [&](auto yp, auto dyp, auto xp) {
    channel_sums_f64(rows, c, sums, [&](int64_t r, int64_t i, double& a, double& b) {
      const int64_t o = r * c + i;
      const float g = kRelu ? masked_by_positive(dyp[o], yp[o]) : dyp[o];
      a += g;
      b += static_cast<double>(g) * (xp[o] - mp[i]);
    });
  });
  const std::vector<double> is = inv_std(var, epsilon);
  for (int64_t i = 0; i < c; ++i) sums[c + i] *= is[i];
}

}  // namespace

void batch_norm_partial_sums(const Tensor& x, double* sums) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  // A float times itself is exact in double (24 + 24 bits of mantissa < 53).
  with_rows(x, [&](auto xp) {
    channel_sums_f64(rows, c, sums, [&](int64_t r, int64_t i, double& a, double& b) {
      const double v = xp[r * c + i];
      a += v;
      b += v * v;
    });
  });
}

void batch_norm_moments(const double* sums, int64_t count, Tensor& mean, Tensor& var) {
  RESIDUAL_CHECK(count >= 1, "batch_norm_moments: the batch has ", count,
                 " rows, so it has no mean or variance");
  const int64_t c = mean.numel();
  const double n = static_cast<double>(count);
  for (int64_t i = 0; i < c; ++i) {
    const double m = sums[i] / n;
    mean.f32()[i] = static_cast<float>(m);
    var.f32()[i] = static_cast<float>(std::max(sums[c + i] / n - m * m, 0.0));
  }
}

void batch_norm_backward_partial_sums(const Tensor& x, const Tensor& y, const Tensor& dy,
                                      const Tensor& mean, const Tensor& var, float epsilon,
                                      bool relu, double* sums) {
  if (relu) {
    backward_partial_sums_impl<true>(x, y, dy, mean, var, epsilon, sums);
  } else {
    backward_partial_sums_impl<false>(x, y, dy, mean, var, epsilon, sums);
  }
}

void batch_norm_backward_apply(const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& mean, const Tensor& var,
                               float epsilon, bool relu, const double* sums, int64_t count,
                               Tensor& dx) {
  RESIDUAL_CHECK(count >= 1, "batch_norm_backward_apply: the batch has ", count, " rows");
  const int64_t c = mean.numel();
  const double n = static_cast<double>(count);
  const std::vector<double> is = inv_std(var, epsilon);
  // dx = g * is * (dy' - sum_dy / n - (x - mean) * is * sum_dy_xhat / n)
  //    = k_dy * dy' + k_x * x + k_0
  std::vector<float> k_dy(c), k_x(c), k_0(c);
  for (int64_t i = 0; i < c; ++i) {
    const double g = gamma.f32()[i];
    const double kx = -g * is[i] * is[i] * sums[c + i] / n;
    k_dy[i] = static_cast<float>(g * is[i]);
    k_x[i] = static_cast<float>(kx);
    k_0[i] = static_cast<float>(-g * is[i] * sums[i] / n - kx * mean.f32()[i]);
  }
  if (relu) {
    write_dx<true>(x, y, dy, k_dy.data(), k_x.data(), k_0.data(), dx);
  } else {
    write_dx<false>(x, y, dy, k_dy.data(), k_x.data(), k_0.data(), dx);
  }
}

}  // namespace residual::ops::cpu
