#pragma once
// The two engines behind the CUDA convolution ops (ops/cuda/conv2d.cu): cuDNN
// (conv2d_cudnn.cu) and direct kernels (conv2d_direct.cu) for a geometry cuDNN has no
// deterministic algorithm for. For .cu files only.
#include <cuda_runtime.h>

#include "ops/ops.h"

namespace residual::ops::gpu::conv {

// One convolution as cuDNN sees it: NHWC float32 data, a K x R x S x C/groups filter
// (cuDNN's NHWC filter format), symmetric padding, every size an int (cuDNN's
// descriptors take int; conv2d.cu splits the batch so no tensor reaches 2^31 elements).
struct CudnnShape {
  int n = 0, c = 0, h = 0, w = 0;       // input, already padded where padding is asymmetric
  int k = 0, r = 0, s = 0, groups = 1;  // filter
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int out_h = 0, out_w = 0;
  bool tf32 = false;  // allow_tf32() read once per op call, so its chunks agree
};

enum class Direction { kForward, kBackwardData, kBackwardFilter };

// Whether cuDNN has an algorithm for `shape` in `direction` on GPU `device` that is
// deterministic, true float32 unless shape.tf32 (ops/cuda/cudnn_settings.h), and within
// the workspace limit. Chosen once per (device, direction, shape) and cached. The caller makes
// `device` current (DeviceGuard).
bool cudnn_supports(int device, Direction direction, const CudnnShape& shape);

// The calls, on the GPU's compute stream, with the cached algorithm (cudnn_supports must
// have said yes). Outputs are overwritten, except dw, which becomes beta * dw + dL/dw
// (beta 0 or 1: conv2d.cu accumulates the weight gradient over batch chunks).
void cudnn_forward(int device, const CudnnShape& shape, const float* x, const float* w, float* y);
void cudnn_backward_data(int device, const CudnnShape& shape, const float* dy, const float* w,
                         float* dx);
void cudnn_backward_filter(int device, const CudnnShape& shape, const float* x, const float* dy,
                           float* dw, float beta);

// Direct kernels on the op's own geometry and layouts (NHWC data, K x C/groups x kH x kW
// filter, any padding), queued on `stream`; outputs overwritten. Deterministic, int64
// indexing, slow: a fallback, never the main path.
void direct_forward(const Conv2dGeometry& g, const float* x, const float* w, float* y,
                    cudaStream_t stream);
void direct_backward_data(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                          cudaStream_t stream);
void direct_backward_weights(const Conv2dGeometry& g, const float* x, const float* dy, float* dw,
                             cudaStream_t stream);

}  // namespace residual::ops::gpu::conv
