// Batch normalisation over N x H x W x C with the channel innermost: every pass is a
// stream over rows with a vectorised loop over channels. Statistics accumulate in double
// per thread and combine in thread order (deterministic for a given thread count).
// Our own kernel rather than oneDNN's: see docs/architecture.md.
#include <cmath>
#include <vector>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {
namespace {

// Per-channel sums of a(row, c) and b(row, c) over all rows, in double.
template <typename RowFn>
void channel_sums(int64_t rows, int64_t c, std::vector<double>& s1, std::vector<double>& s2,
                  RowFn&& row_fn) {
  const int threads = max_threads();
  std::vector<double> partial(static_cast<size_t>(threads) * 2 * c, 0.0);
  parallel_ranges(rows, [&](int64_t begin, int64_t end, int t) {
    double* a = partial.data() + static_cast<size_t>(t) * 2 * c;
    double* b = a + c;
    for (int64_t r = begin; r < end; ++r) row_fn(r, a, b);
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

void normalize(const float* x, const float* scale, const float* shift, bool relu, int64_t rows,
               int64_t c, float* y) {
  parallel_ranges(rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      if (relu) {
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) yr[i] = std::fmax(xr[i] * scale[i] + shift[i], 0.f);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) yr[i] = xr[i] * scale[i] + shift[i];
      }
    }
  });
}

}  // namespace

void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                 Tensor& batch_var) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  const float* xp = x.f32();
  std::vector<double> sum, sumsq;
  channel_sums(rows, c, sum, sumsq, [&](int64_t r, double* a, double* b) {
    const float* xr = xp + r * c;
#pragma omp simd
    for (int64_t i = 0; i < c; ++i) {
      a[i] += xr[i];
      b[i] += static_cast<double>(xr[i]) * xr[i];
    }
  });
  std::vector<float> scale(c), shift(c);
  float* mean = batch_mean.f32();
  float* var = batch_var.f32();
  for (int64_t i = 0; i < c; ++i) {
    const double m = sum[i] / rows;
    const double v = std::max(sumsq[i] / rows - m * m, 0.0);
    mean[i] = static_cast<float>(m);
    var[i] = static_cast<float>(v);
    const double s = gamma.f32()[i] / std::sqrt(v + epsilon);
    scale[i] = static_cast<float>(s);
    shift[i] = static_cast<float>(beta.f32()[i] - m * s);
  }
  normalize(xp, scale.data(), shift.data(), relu, rows, c, y.f32());
}

void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& var, float epsilon,
                                  bool relu, Tensor& y) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    const double s = gamma.f32()[i] / std::sqrt(static_cast<double>(var.f32()[i]) + epsilon);
    scale[i] = static_cast<float>(s);
    shift[i] = static_cast<float>(beta.f32()[i] - mean.f32()[i] * s);
  }
  normalize(x.f32(), scale.data(), shift.data(), relu, rows, c, y.f32());
}

void batch_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                         const Tensor& gamma, const Tensor& batch_mean,
                         const Tensor& batch_var, float epsilon, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta) {
  const int64_t c = x.shape()[x.rank() - 1], rows = x.numel() / c;
  const float* xp = x.f32();
  const float* dyp = dy.f32();
  const float* yp = relu ? y.f32() : nullptr;
  const float* mean = batch_mean.f32();
  std::vector<float> inv_std(c);
  for (int64_t i = 0; i < c; ++i) {
    inv_std[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(batch_var.f32()[i]) + epsilon));
  }
  // sum_dy = sum(dy'), sum_dy_xc = sum(dy' * (x - mean)); dy' is dy masked by the ReLU.
  std::vector<double> sum_dy, sum_dy_xc;
  channel_sums(rows, c, sum_dy, sum_dy_xc, [&](int64_t r, double* a, double* b) {
    const float* xr = xp + r * c;
    const float* dr = dyp + r * c;
    const float* yr = relu ? yp + r * c : nullptr;
#pragma omp simd
    for (int64_t i = 0; i < c; ++i) {
      const float g = relu ? (yr[i] > 0.f ? dr[i] : 0.f) : dr[i];
      a[i] += g;
      b[i] += static_cast<double>(g) * (xr[i] - mean[i]);
    }
  });
  // dx = gamma * inv_std * (dy' - mean(dy') - xhat * mean(dy' * xhat))
  std::vector<float> k_dy(c), k_x(c), k_0(c);
  for (int64_t i = 0; i < c; ++i) {
    const double g = gamma.f32()[i], is = inv_std[i];
    dgamma.f32()[i] = static_cast<float>(sum_dy_xc[i] * is);
    dbeta.f32()[i] = static_cast<float>(sum_dy[i]);
    k_dy[i] = static_cast<float>(g * is);
    k_x[i] = static_cast<float>(-g * is * is * is * sum_dy_xc[i] / rows);
    k_0[i] = static_cast<float>(-g * is * sum_dy[i] / rows - k_x[i] * mean[i]);
  }
  float* dxp = dx.f32();
  parallel_ranges(rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xp + r * c;
      const float* dr = dyp + r * c;
      const float* yr = relu ? yp + r * c : nullptr;
      float* out = dxp + r * c;
#pragma omp simd
      for (int64_t i = 0; i < c; ++i) {
        const float g = relu ? (yr[i] > 0.f ? dr[i] : 0.f) : dr[i];
        out[i] = k_dy[i] * g + k_x[i] * xr[i] + k_0[i];
      }
    }
  });
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

}  // namespace residual::ops::cpu
