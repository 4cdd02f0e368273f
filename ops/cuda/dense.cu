// Fully connected layer on cuBLAS (the CPU twin, ops/cpu/dense.cpp, is oneDNN's inner
// product): y = x w^T + b with x N x in, w out x in, y N x out, all row-major. Like the
// CPU twin, the backward overwrites dw and dbias (no accumulation), and a batch of 0
// runs nothing but zeroes the weight gradients.
//
// cuBLAS is column-major: a row-major R x C matrix is, to cuBLAS, its C x R transpose
// with leading dimension C. So each product is computed as its transpose:
//   y  = x w^T   ->  y^T  = w  x^T    (w^T as stored, transposed; x^T as stored)
//   dx = dy w    ->  dx^T = w^T dy^T  (both as stored)
//   dw = dy^T x  ->  dw^T = x^T dy    (x^T as stored; dy^T as stored, transposed)
#include "ops/cuda/common.cuh"
#include "ops/cuda/cublas_handle.cuh"
#include "ops/cuda/cuda_ops.h"

namespace residual::ops::gpu {
namespace {

// C (m x n, column-major) = op(A) op(B) + beta C, float32 throughout (the handle's
// pedantic math mode). The _64 entry point takes sizes past 2^31 elements.
void gemm(int device, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n,
          int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  const float alpha = 1.f;
  cuda::check_cublas(cublasSgemm_64(cuda::cublas_handle(device), op_a, op_b, m, n, k, &alpha, a,
                                    lda, b, ldb, &beta, c, ldc),
                     "cublasSgemm (dense)");
}

// y[r, o] = bias[o]: the GEMM then adds x w^T onto it (beta = 1).
__global__ void broadcast_rows_kernel(const float* bias, int64_t rows, int64_t cols, float* y) {
  const int64_t total = rows * cols;
  for (int64_t i = cuda::first_index(); i < total; i += cuda::index_step()) {
    y[i] = bias[i % cols];
  }
}

// dbias[c] = sum over rows of dy[r, c], in double and in a fixed order: a block owns 32
// columns (a warp reads 32 neighbouring floats of a row), its kRowLanes rows of threads
// each sum every kRowLanes-th row, and one thread per column adds the lanes in order.
constexpr int kColumnsPerBlock = 32;
constexpr int kRowLanes = 16;

__global__ void column_sums_kernel(const float* dy, int64_t rows, int64_t cols, float* out) {
  __shared__ double lanes[kRowLanes][kColumnsPerBlock + 1];
  const int64_t tiles = (cols + kColumnsPerBlock - 1) / kColumnsPerBlock;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {  // uniform per block
    const int64_t c = tile * kColumnsPerBlock + threadIdx.x;
    double sum = 0;
    if (c < cols) {
      for (int64_t r = threadIdx.y; r < rows; r += kRowLanes) sum += dy[r * cols + c];
    }
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
      double total = 0;
      for (int lane = 0; lane < kRowLanes; ++lane) total += lanes[lane][threadIdx.x];
      out[c] = static_cast<float>(total);
    }
    __syncthreads();  // before the next tile overwrites `lanes`
  }
}

}  // namespace

void dense_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  if (n == 0) return;
  const int device = x.device().index;
  cuda::DeviceGuard guard(device);
  float* y_data = y.device_f32();
  float beta = 0.f;  // with beta 0 cuBLAS does not read y (it may hold NaN)
  if (bias) {
    broadcast_rows_kernel<<<cuda::grid_for(n * out), cuda::kThreadsPerBlock, 0,
                            cuda::stream_of(x)>>>(bias->device_f32(), n, out, y_data);
    cuda::check_launch("broadcast_rows_kernel (dense bias)");
    beta = 1.f;
  }
  gemm(device, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w.device_f32(), in, x.device_f32(), in, beta,
       y_data, out);
}

void dense_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx) {
  const int64_t n = dy.dim(0), out = w.dim(0), in = w.dim(1);
  if (n == 0) return;
  const int device = dy.device().index;
  cuda::DeviceGuard guard(device);
  gemm(device, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w.device_f32(), in, dy.device_f32(), out, 0.f,
       dx.device_f32(), in);
}

void dense_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias) {
  const int64_t n = x.dim(0), in = x.dim(1), out = dy.dim(1);
  if (n == 0) {
    dw.zero();
    if (dbias) dbias->zero();
    return;
  }
  const int device = x.device().index;
  cuda::DeviceGuard guard(device);
  gemm(device, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x.device_f32(), in, dy.device_f32(), out, 0.f,
       dw.device_f32(), in);
  if (dbias) {
    const int64_t tiles = (out + kColumnsPerBlock - 1) / kColumnsPerBlock;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(tiles, int64_t{1} << 16));
    column_sums_kernel<<<blocks, dim3(kColumnsPerBlock, kRowLanes), 0, cuda::stream_of(dy)>>>(
        dy.device_f32(), n, out, dbias->device_f32());
    cuda::check_launch("column_sums_kernel (dense bias gradient)");
  }
}

}  // namespace residual::ops::gpu
