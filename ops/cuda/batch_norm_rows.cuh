#pragma once
// The row passes of batch normalisation (ops for cuda::apply_rows / reduce_rows), shared
// by the fused ops (batch_norm.cu) and the split pieces of synchronised BN
// (batch_norm_sums.cu). Per-channel formulas are the CPU twin's (ops/cpu/batch_norm.cpp),
// in the same precision; sums accumulate in double from the first element.
#include <cstdint>
#include <utility>

#include "core/tensor.h"
#include "ops/cuda/channel_rows.cuh"

namespace residual::ops::gpu::bn {

using cuda::Lanes;
using cuda::load_lanes;
using cuda::load_scalars;
using cuda::store_lanes;

// Calls f(Op<relu>{params}): the fused ReLU decided at compile time, so a pass without it
// never loads y. Each Op<kRelu> derives from its plain Params struct.
template <template <bool> class Op, class Params, class F>
void with_relu(bool relu, const Params& params, F&& f) {
  if (relu) {
    std::forward<F>(f)(Op<true>{params});
  } else {
    std::forward<F>(f)(Op<false>{params});
  }
}

// C = the last dimension; rows = all the others (none for an empty tensor).
inline cuda::RowsShape rows_of(const Tensor& x) {
  cuda::RowsShape s;
  s.channels = x.rank() > 0 ? x.shape()[x.rank() - 1] : 0;
  s.seg_rows = s.channels > 0 ? x.numel() / s.channels : 0;
  return s;
}

// dy where the fused ReLU passed its input (y > 0), else 0.
template <bool kRelu>
__device__ __forceinline__ float masked(float dy, float y) {
  if constexpr (kRelu) {
    return y > 0.f ? dy : 0.f;
  } else {
    return dy;
  }
}

// max(v, 0) as std::max(v, 0.0) on the CPU: a NaN stays NaN.
__device__ __forceinline__ double clamp_negative(double v) { return v < 0.0 ? 0.0 : v; }

// Sums of (x - k) and (x - k)^2 with k = the first row: E[x^2] - mean^2 would cancel
// catastrophically when |mean| >> std. x - k in float as the CPU; its square is exact in
// double.
struct ShiftedSums {
  const float* x = nullptr;
  template <int V>
  __device__ Lanes<V> prepare(int64_t, int64_t c) const {
    return load_scalars<V>(x + c);
  }
  template <int V>
  __device__ Lanes<V> load(int64_t o) const {
    return load_lanes<V>(x + o);
  }
  template <int V, class Acc>
  __device__ void consume(const Lanes<V>& k, const Lanes<V>& in, int64_t, Acc& acc) const {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const double d = in.v[v] - k.v[v];
      acc[0][v] += d;
      acc[1][v] += d * d;
    }
  }
};

// Batch statistics from the shifted sums; scale and shift for the normalisation into
// coef[0, C) and coef[C, 2C).
struct TrainingFinish {
  const float *x = nullptr, *gamma = nullptr, *beta = nullptr;
  float *mean = nullptr, *var = nullptr, *coef = nullptr;
  double rows = 0;
  float epsilon = 0;
  int64_t channels = 0;
  __device__ void operator()(int64_t, int64_t c, const double (&s)[2]) const {
    const double shifted_mean = s[0] / rows;
    const double m = shifted_mean + x[c];
    const double v = clamp_negative(s[1] / rows - shifted_mean * shifted_mean);
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(v);
    const double scale = gamma[c] / sqrt(v + epsilon);
    coef[c] = static_cast<float>(scale);
    coef[channels + c] = static_cast<float>(beta[c] - m * scale);
  }
};

// y = x * scale + shift (then max(0, .) under kRelu). scale and shift come from `coef`
// (2C floats) when it is set, else from gamma, beta and the given statistics as the CPU's
// inference forward computes them (once per thread, not per row).
struct NormalizeParams {
  const float* x = nullptr;
  float* y = nullptr;
  const float* coef = nullptr;
  const float *gamma = nullptr, *beta = nullptr, *mean = nullptr, *var = nullptr;
  float epsilon = 0;
  int64_t channels = 0;
};

template <bool kRelu>
struct Normalize : NormalizeParams {
  template <int V>
  struct Constants {
    Lanes<V> scale, shift;
  };
  template <int V>
  __device__ Constants<V> prepare(int64_t, int64_t c) const {
    Constants<V> k;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      if (coef) {
        k.scale.v[v] = coef[c + v];
        k.shift.v[v] = coef[channels + c + v];
      } else {
        const double s = gamma[c + v] / sqrt(static_cast<double>(var[c + v]) + epsilon);
        k.scale.v[v] = static_cast<float>(s);
        k.shift.v[v] = static_cast<float>(beta[c + v] - mean[c + v] * s);
      }
    }
    return k;
  }
  template <int V>
  __device__ Lanes<V> load(int64_t o) const {
    return load_lanes<V>(x + o);
  }
  template <int V, class Acc>
  __device__ void consume(const Constants<V>& k, const Lanes<V>& in, int64_t o, Acc&) const {
    Lanes<V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const float t = in.v[v] * k.scale.v[v] + k.shift.v[v];
      out.v[v] = kRelu ? (t > 0.f ? t : 0.f) : t;
    }
    store_lanes<V>(y + o, out);
  }
};

// The inputs of the backward passes at one row: y only under the fused ReLU.
template <int V>
struct BackwardIn {
  Lanes<V> x, dy, y;
};

template <bool kRelu, int V>
__device__ __forceinline__ BackwardIn<V> load_backward(const float* x, const float* dy,
                                                       const float* y, int64_t o) {
  BackwardIn<V> in{};  // y stays 0 (unread) without the ReLU
  in.x = load_lanes<V>(x + o);
  in.dy = load_lanes<V>(dy + o);
  if constexpr (kRelu) in.y = load_lanes<V>(y + o);
  return in;
}

// Sums of dy' and dy' * (x - mean); x - mean in float as the CPU, the product exact in
// double.
struct BackwardSumsParams {
  const float *x = nullptr, *y = nullptr, *dy = nullptr, *mean = nullptr;
};

inline BackwardSumsParams backward_sums_params(const Tensor& x, const Tensor& y, const Tensor& dy,
                                               const Tensor& mean, bool relu) {
  BackwardSumsParams p;
  p.x = x.device_f32();
  p.y = relu ? y.device_f32() : nullptr;  // y may be unset without the ReLU
  p.dy = dy.device_f32();
  p.mean = mean.device_f32();
  return p;
}

template <bool kRelu>
struct BackwardSums : BackwardSumsParams {
  template <int V>
  __device__ Lanes<V> prepare(int64_t, int64_t c) const {
    return load_scalars<V>(mean + c);
  }
  template <int V>
  __device__ BackwardIn<V> load(int64_t o) const {
    return load_backward<kRelu, V>(x, dy, y, o);
  }
  template <int V, class Acc>
  __device__ void consume(const Lanes<V>& m, const BackwardIn<V>& in, int64_t, Acc& acc) const {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const float g = masked<kRelu>(in.dy.v[v], in.y.v[v]);
      acc[0][v] += g;
      acc[1][v] += static_cast<double>(g) * static_cast<double>(in.x.v[v] - m.v[v]);
    }
  }
};

// dx = k_dy * dy' + k_x * x + k_0 per channel. The coefficients come from `coef` (3C
// floats: k_dy, k_x, k_0) when set, else from the global sums of the split backward
// (sums[0, C) = sum dy', sums[C, 2C) = sum dy' * xhat) and the global row count.
struct ApplyDxParams {
  const float *x = nullptr, *y = nullptr, *dy = nullptr;
  float* dx = nullptr;
  const float* coef = nullptr;
  const float *gamma = nullptr, *mean = nullptr, *var = nullptr;
  const double* sums = nullptr;
  double count = 0;
  float epsilon = 0;
  int64_t channels = 0;
};

template <bool kRelu>
struct ApplyDx : ApplyDxParams {
  template <int V>
  struct Constants {
    Lanes<V> kd, kx, k0;
  };
  template <int V>
  __device__ Constants<V> prepare(int64_t, int64_t c) const {
    Constants<V> k;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int64_t i = c + v;
      if (coef) {
        k.kd.v[v] = coef[i];
        k.kx.v[v] = coef[channels + i];
        k.k0.v[v] = coef[2 * channels + i];
      } else {
        const double g = gamma[i];
        const double is = 1.0 / sqrt(static_cast<double>(var[i]) + epsilon);
        const double kx = -g * is * is * sums[channels + i] / count;
        k.kd.v[v] = static_cast<float>(g * is);
        k.kx.v[v] = static_cast<float>(kx);
        k.k0.v[v] = static_cast<float>(-g * is * sums[i] / count - kx * mean[i]);
      }
    }
    return k;
  }
  template <int V>
  __device__ BackwardIn<V> load(int64_t o) const {
    return load_backward<kRelu, V>(x, dy, y, o);
  }
  template <int V, class Acc>
  __device__ void consume(const Constants<V>& k, const BackwardIn<V>& in, int64_t o, Acc&) const {
    Lanes<V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const float g = masked<kRelu>(in.dy.v[v], in.y.v[v]);
      out.v[v] = k.kd.v[v] * g + k.kx.v[v] * in.x.v[v] + k.k0.v[v];
    }
    store_lanes<V>(dx + o, out);
  }
};

}  // namespace residual::ops::gpu::bn
