// y[n, h, w, c] = x[n, h, w, c] * s[n, c] on the GPU (squeeze-and-excitation). Each sample
// is a segment of H * W rows (ops/cuda/channel_rows.cuh), so a thread loads its s[n, c]
// once per sample and never divides an index. The backward's ds[n, c] sums dy * x over the
// sample's pixels in double (per-block partials combined in a fixed order); dx = dy * s is
// written in the same pass when both are wanted.
#include "core/error.h"
#include "ops/cuda/channel_rows.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

using cuda::Lanes;
using cuda::load_lanes;
using cuda::store_lanes;

// out = in * s[segment] (the forward with in = x; dx alone with in = dy).
struct ScaleRows {
  const float* in = nullptr;
  const float* s = nullptr;
  float* out = nullptr;
  int64_t channels = 0;
  template <int V>
  __device__ Lanes<V> prepare(int64_t seg, int64_t c) const {
    return cuda::load_scalars<V>(s + seg * channels + c);
  }
  template <int V>
  __device__ Lanes<V> load(int64_t o) const {
    return load_lanes<V>(in + o);
  }
  template <int V, class Acc>
  __device__ void consume(const Lanes<V>& k, const Lanes<V>& t, int64_t o, Acc&) const {
    Lanes<V> r;
#pragma unroll
    for (int v = 0; v < V; ++v) r.v[v] = t.v[v] * k.v[v];
    store_lanes<V>(out + o, r);
  }
};

template <int V>
struct GradIn {
  Lanes<V> x, dy;
};

// Sum of dy * x (exact products in double); with kDx also dx = dy * s.
template <bool kDx>
struct ScaleGrad {
  const float *x = nullptr, *dy = nullptr, *s = nullptr;
  float* dx = nullptr;
  int64_t channels = 0;
  template <int V>
  __device__ Lanes<V> prepare(int64_t seg, int64_t c) const {
    if constexpr (kDx) {
      return cuda::load_scalars<V>(s + seg * channels + c);
    } else {
      return Lanes<V>{};
    }
  }
  template <int V>
  __device__ GradIn<V> load(int64_t o) const {
    return GradIn<V>{load_lanes<V>(x + o), load_lanes<V>(dy + o)};
  }
  template <int V, class Acc>
  __device__ void consume(const Lanes<V>& k, const GradIn<V>& in, int64_t o, Acc& acc) const {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      acc[0][v] += static_cast<double>(in.dy.v[v]) * static_cast<double>(in.x.v[v]);
    }
    if constexpr (kDx) {
      Lanes<V> r;
#pragma unroll
      for (int v = 0; v < V; ++v) r.v[v] = in.dy.v[v] * k.v[v];
      store_lanes<V>(dx + o, r);
    }
  }
};

struct WriteDs {
  float* ds = nullptr;
  int64_t channels = 0;
  __device__ void operator()(int64_t seg, int64_t c, const double (&s)[1]) const {
    ds[seg * channels + c] = static_cast<float>(s[0]);
  }
};

// Samples as segments of H * W rows of C channels.
cuda::RowsShape samples_of(const Tensor& x) {
  cuda::RowsShape shape;
  shape.segments = x.dim(0);
  shape.seg_rows = x.dim(1) * x.dim(2);
  shape.channels = x.shape()[x.rank() - 1];
  return shape;
}

// out = in * s[n, c] over the rows of `shape` (the forward, and dx alone).
void scale_rows(const Tensor& in, const Tensor& s, Tensor& out, const cuda::RowsShape& shape,
                Device device, const char* name) {
  ScaleRows op;
  op.in = in.device_f32();
  op.s = s.device_f32();
  op.out = out.device_f32();
  op.channels = shape.channels;
  cuda::apply_rows(op, cuda::can_vectorize(shape.channels, {op.in, op.out}), shape, device, name);
}

// ds (and dx when given) in one pass. A sample without pixels gets ds = 0 from the
// combine (a sum of no rows).
template <bool kDx>
void reduce_grad(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx, Tensor& ds,
                 const cuda::RowsShape& shape) {
  const float* xp = x.device_f32();
  const float* dyp = dy.device_f32();
  float* dxp = kDx ? dx->device_f32() : nullptr;
  ScaleGrad<kDx> op;
  op.x = xp;
  op.dy = dyp;
  op.s = kDx ? s.device_f32() : nullptr;
  op.dx = dxp;
  op.channels = shape.channels;
  WriteDs finish;
  finish.ds = ds.device_f32();
  finish.channels = shape.channels;
  const bool vectorize = cuda::can_vectorize(shape.channels, {xp, dyp, dxp});
  cuda::reduce_rows<1>(op, finish, vectorize, shape, x.device(), "channel_scale_backward");
}

}  // namespace

void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y) {
  const cuda::RowsShape shape = samples_of(x);
  if (x.numel() == 0) return;
  scale_rows(x, s, y, shape, x.device(), "channel_scale_forward");
}

void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx,
                            Tensor* ds) {
  const cuda::RowsShape shape = samples_of(x);
  if (shape.segments == 0 || shape.channels == 0 || (!dx && !ds)) return;
  const Device device = x.device();
  if (!ds) {
    if (shape.seg_rows == 0) return;
    scale_rows(dy, s, *dx, shape, device, "channel_scale_backward (dx)");
    return;
  }
  if (dx) {
    reduce_grad<true>(x, s, dy, dx, *ds, shape);
  } else {
    reduce_grad<false>(x, s, dy, nullptr, *ds, shape);
  }
}

}  // namespace residual::ops::gpu
