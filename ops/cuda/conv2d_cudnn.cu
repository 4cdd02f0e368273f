// The cuDNN engine of the CUDA convolutions (ops/cuda/conv2d_internal.cuh).
//
// cuDNN 9 still ships the descriptor API of cuDNN 7/8 (cudnn_cnn.h: deprecated, not
// removed), which is all a fixed NHWC float32 convolution needs; the graph API would add
// plans and engine configs for nothing here.
//
// Layouts: data NHWC with the filter in cuDNN's NHWC filter format (K x R x S x C/g), as
// PyTorch always presents channels-last convolutions (it makes the weight channels-last
// too), and as cuDNN's NHWC kernels are written for; a mixed NHWC-data / KCRS-filter
// call is not a combination the NHWC kernels take. conv2d.cu transposes our KCRS weights.
//
// Algorithms: cuDNN's heuristics rank them (cudnnGet*_v7: no timing runs, so the choice
// is the same from run to run and results are bit-identical), and the first one that is
// deterministic, exact and fits the workspace limit is kept per shape. "Exact" (the
// default) means CUDNN_FMA_MATH and no FFT or Winograd transform: true float32 products
// summed in the order of a GEMM, which matches the CPU's oneDNN to rounding; TF32
// (set_allow_tf32) allows tensor-core math and every deterministic algorithm.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ops/cuda/common.cuh"
#include "ops/cuda/conv2d_internal.cuh"
#include "ops/cuda/cudnn_handle.cuh"
#include "ops/cuda/cudnn_settings.h"
#include "ops/cuda/reduce.cuh"

namespace residual {
namespace cuda {
namespace {
std::atomic<bool> tf32_allowed{false};
}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

}  // namespace cuda

namespace ops::gpu::conv {
namespace {

using cuda::check_cudnn;
using cuda::CudnnHandle;

// Above this a workspace is not worth it (a fixed figure, not a share of free memory:
// the choice, and so the result, must not depend on what else the GPU holds).
constexpr size_t kWorkspaceLimit = size_t{1} << 30;

struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  Descriptors() = default;
  // Not in the constructor: a failure half-way leaves the destructor to free the rest.
  void create() {
    check_cudnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
  }
  ~Descriptors() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

// One (device, direction, shape): its descriptors (the convolution descriptor carries
// the chosen math type) and algorithm. Immutable once made; used only under the device's
// CudnnHandle lock, which serialises every use of its descriptors.
struct Plan {
  Descriptors d;
  bool supported = false;
  int algo = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;
};

template <Direction D>
struct Algo;

template <>
struct Algo<Direction::kForward> {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Type = cudnnConvolutionFwdAlgo_t;
  static constexpr const char* kName = "forward";
  static constexpr std::array<Type, 2> kFallback = {
      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM};
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t rank(cudnnHandle_t h, const Descriptors& d, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, n, got, perf);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descriptors& d, Type a, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, a, bytes);
  }
  static bool deterministic(Type) { return true; }
  static bool exact(Type a) {
    return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
  }
};

template <>
struct Algo<Direction::kBackwardData> {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Type = cudnnConvolutionBwdDataAlgo_t;
  static constexpr const char* kName = "backward-data";
  static constexpr std::array<Type, 1> kFallback = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t rank(cudnnHandle_t h, const Descriptors& d, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, n, got, perf);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descriptors& d, Type a, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, a, bytes);
  }
  // cudnn_ops.h: ALGO_0 sums with atomics, whatever a heuristic entry says.
  static bool deterministic(Type a) { return a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_0; }
  static bool exact(Type a) {
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  }
};

template <>
struct Algo<Direction::kBackwardFilter> {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Type = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr const char* kName = "backward-filter";
  static constexpr std::array<Type, 1> kFallback = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t rank(cudnnHandle_t h, const Descriptors& d, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, n, got, perf);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descriptors& d, Type a, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, a, bytes);
  }
  // cudnn_ops.h: ALGO_0 and ALGO_3 sum with atomics.
  static bool deterministic(Type a) {
    return a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 && a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
  static bool exact(Type a) {
    return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
           a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
};

void describe(const CudnnShape& s, Descriptors& d) {
  d.create();
  check_cudnn(
      cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.n, s.c, s.h, s.w),
      "cudnnSetTensor4dDescriptor (input)");
  check_cudnn(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.n, s.k,
                                         s.out_h, s.out_w),
              "cudnnSetTensor4dDescriptor (output)");
  check_cudnn(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, s.k,
                                         s.c / s.groups, s.r, s.s),
              "cudnnSetFilter4dDescriptor");
  check_cudnn(cudnnSetConvolution2dDescriptor(d.conv, s.pad_h, s.pad_w, s.stride_h, s.stride_w,
                                              s.dilation_h, s.dilation_w, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT),
              "cudnnSetConvolution2dDescriptor");
  check_cudnn(cudnnSetConvolutionGroupCount(d.conv, s.groups), "cudnnSetConvolutionGroupCount");
  // The math type before the heuristics: it limits what they may propose.
  check_cudnn(cudnnSetConvolutionMathType(d.conv, s.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
              "cudnnSetConvolutionMathType");
  // cuDNN's own output size must be ours, or the geometry was translated wrongly.
  int n = 0, k = 0, h = 0, w = 0;
  check_cudnn(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &k, &h, &w),
              "cudnnGetConvolution2dForwardOutputDim");
  RESIDUAL_CHECK(n == s.n && k == s.k && h == s.out_h && w == s.out_w,
                 "conv2d on CUDA: cuDNN computes a ", n, "x", h, "x", w, "x", k,
                 " output where the geometry says ", s.n, "x", s.out_h, "x", s.out_w, "x", s.k);
}

std::string shape_str(const CudnnShape& s) {
  return str_cat("N", s.n, " ", s.h, "x", s.w, "x", s.c, " -> ", s.out_h, "x", s.out_w, "x", s.k,
                 ", kernel ", s.r, "x", s.s, ", stride ", s.stride_h, "x", s.stride_w,
                 ", dilation ", s.dilation_h, "x", s.dilation_w, ", pad ", s.pad_h, "x", s.pad_w,
                 ", groups ", s.groups, s.tf32 ? ", TF32" : "");
}

template <Direction D>
void choose(cudnnHandle_t h, int device, const CudnnShape& s, Plan& p) {
  using A = Algo<D>;
  // A failed ranking is no error: the fixed candidates below remain.
  int max = 0;
  if (A::max_count(h, &max) != CUDNN_STATUS_SUCCESS || max < 1) max = 16;
  std::vector<typename A::Perf> perf(static_cast<size_t>(max));
  int got = 0;
  if (A::rank(h, p.d, max, &got, perf.data()) != CUDNN_STATUS_SUCCESS) got = 0;
  got = std::min(got, max);
  std::vector<std::pair<typename A::Type, cudnnMathType_t>> candidates;
  for (int i = 0; i < got; ++i) {
    const auto& q = perf[static_cast<size_t>(i)];
    if (q.status != CUDNN_STATUS_SUCCESS || q.determinism != CUDNN_DETERMINISTIC) continue;
    if (!A::deterministic(q.algo)) continue;
    const bool math_ok = s.tf32 ? q.mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
                                : q.mathType == CUDNN_FMA_MATH && A::exact(q.algo);
    if (math_ok) candidates.emplace_back(q.algo, q.mathType);
  }
  // Heuristics that rank nothing usable (or report another math type than asked) still
  // leave the plain GEMM algorithms, which the workspace query below accepts or rejects.
  for (auto a : A::kFallback)
    candidates.emplace_back(a, s.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
  for (const auto& [algo, math] : candidates) {
    if (cudnnSetConvolutionMathType(p.d.conv, math) != CUDNN_STATUS_SUCCESS) continue;
    size_t bytes = 0;
    if (A::workspace(h, p.d, algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > kWorkspaceLimit) {
      continue;
    }
    p.supported = true;
    p.algo = static_cast<int>(algo);
    p.math = math;
    p.workspace = bytes;
    const char* log = std::getenv("RESIDUAL_CUDNN_LOG");
    if (log && *log) {
      std::fprintf(
          stderr,
          "residual: cuDNN %s on cuda:%d, %s: algorithm %d, math type %d, workspace %zu bytes\n",
          A::kName, device, shape_str(s).c_str(), p.algo, static_cast<int>(math), bytes);
    }
    return;
  }
  // Slow, so said once per shape: conv2d.cu then runs the direct kernels.
  std::fprintf(stderr,
               "residual: warning: cuDNN has no deterministic %s %s algorithm for %s on "
               "cuda:%d: using the direct CUDA kernels (slow)\n",
               s.tf32 ? "TF32" : "float32", A::kName, shape_str(s).c_str(), device);
}

using PlanKey = std::array<int, 19>;

const Plan& plan_for(cudnnHandle_t h, int device, Direction direction, const CudnnShape& s) {
  static std::mutex mutex;
  // Never freed, like the handles (cuda_context.cu says why).
  static auto* plans = new std::map<PlanKey, std::unique_ptr<Plan>>();
  // clang-format off
  const PlanKey key = {device, static_cast<int>(direction), s.tf32 ? 1 : 0,
                       s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.groups, s.pad_h, s.pad_w,
                       s.stride_h, s.stride_w, s.dilation_h, s.dilation_w, s.out_h, s.out_w};
  // clang-format on
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans->find(key);
  if (it != plans->end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  describe(s, plan->d);
  switch (direction) {
    case Direction::kForward:
      choose<Direction::kForward>(h, device, s, *plan);
      break;
    case Direction::kBackwardData:
      choose<Direction::kBackwardData>(h, device, s, *plan);
      break;
    case Direction::kBackwardFilter:
      choose<Direction::kBackwardFilter>(h, device, s, *plan);
      break;
  }
  return *plans->emplace(key, std::move(plan)).first->second;
}

const Plan& supported_plan(cudnnHandle_t h, int device, Direction direction, const CudnnShape& s) {
  const Plan& p = plan_for(h, device, direction, s);
  RESIDUAL_CHECK(p.supported, "conv2d on CUDA: no cuDNN algorithm for ", shape_str(s),
                 " (the caller should have asked cudnn_supports)");
  return p;
}

}  // namespace

bool cudnn_supports(int device, Direction direction, const CudnnShape& shape) {
  CudnnHandle h(device);
  return plan_for(h.get(), device, direction, shape).supported;
}

void cudnn_forward(int device, const CudnnShape& shape, const float* x, const float* w, float* y) {
  CudnnHandle h(device);
  const Plan& p = supported_plan(h.get(), device, Direction::kForward, shape);
  cuda::Scratch workspace(Device::cuda(device), p.workspace);
  const float one = 1.f, zero = 0.f;
  check_cudnn(cudnnConvolutionForward(h.get(), &one, p.d.x, x, p.d.w, w, p.d.conv,
                                      static_cast<cudnnConvolutionFwdAlgo_t>(p.algo),
                                      workspace.as<char>(), p.workspace, &zero, p.d.y, y),
              "cudnnConvolutionForward");
}

void cudnn_backward_data(int device, const CudnnShape& shape, const float* dy, const float* w,
                         float* dx) {
  CudnnHandle h(device);
  const Plan& p = supported_plan(h.get(), device, Direction::kBackwardData, shape);
  cuda::Scratch workspace(Device::cuda(device), p.workspace);
  const float one = 1.f, zero = 0.f;
  check_cudnn(cudnnConvolutionBackwardData(h.get(), &one, p.d.w, w, p.d.y, dy, p.d.conv,
                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo),
                                           workspace.as<char>(), p.workspace, &zero, p.d.x, dx),
              "cudnnConvolutionBackwardData");
}

void cudnn_backward_filter(int device, const CudnnShape& shape, const float* x, const float* dy,
                           float* dw, float beta) {
  CudnnHandle h(device);
  const Plan& p = supported_plan(h.get(), device, Direction::kBackwardFilter, shape);
  cuda::Scratch workspace(Device::cuda(device), p.workspace);
  const float one = 1.f;
  check_cudnn(cudnnConvolutionBackwardFilter(h.get(), &one, p.d.x, x, p.d.y, dy, p.d.conv,
                                             static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo),
                                             workspace.as<char>(), p.workspace, &beta, p.d.w, dw),
              "cudnnConvolutionBackwardFilter");
}

}  // namespace ops::gpu::conv
}  // namespace residual
