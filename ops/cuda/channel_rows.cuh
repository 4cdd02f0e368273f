#pragma once
// Per-channel passes over channels-last tensors (batch norm, channel scale): a tensor is
// `segments` x `seg_rows` rows of C channels, the channel the fastest dimension. A thread
// owns V consecutive channels (V = 4: float4 loads) and walks rows, so the threads of a
// warp read consecutive channels of one or more adjacent rows: coalesced. An Op gives
//   prepare<V>(segment, c) -> per-thread constants (loaded once, not per row),
//   load<V>(offset)        -> the inputs at element `offset` (row * C + c),
//   consume<V>(constants, inputs, offset, acc) -> writes outputs and/or adds into acc.
// With Q > 0 each thread accumulates Q sums per channel in double, a block adds its rows
// in shared memory, and a second kernel adds the blocks' partials in slab order and hands
// each (segment, channel) its Q sums: deterministic, with no atomics. Partials depend on
// the grid, which depends on the shape and the GPU model (SM count, occupancy) only.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "core/device_memory.h"
#include "ops/cuda/common.cuh"

namespace residual::cuda {

// V floats that move as one 16-byte access when V == 4.
template <int V>
struct Lanes {
  float v[V];
};

template <int V>
__device__ __forceinline__ Lanes<V> load_lanes(const float* p) {
  Lanes<V> out;
  if constexpr (V == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    out.v[0] = t.x;
    out.v[1] = t.y;
    out.v[2] = t.z;
    out.v[3] = t.w;
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) out.v[i] = p[i];
  }
  return out;
}

template <int V>
__device__ __forceinline__ void store_lanes(float* p, const Lanes<V>& in) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(in.v[0], in.v[1], in.v[2], in.v[3]);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) p[i] = in.v[i];
  }
}

// Per-channel constants (gamma, running statistics): read once per thread, so scalar
// loads that need no alignment.
template <int V>
__device__ __forceinline__ Lanes<V> load_scalars(const float* p) {
  Lanes<V> out;
#pragma unroll
  for (int i = 0; i < V; ++i) out.v[i] = p[i];
  return out;
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Null pointers (inputs a pass does not read) do not count.
inline bool all_aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers) {
    if (p && !aligned16(p)) return false;
  }
  return true;
}

// float4 access is possible when every row starts on a 16-byte boundary.
inline bool can_vectorize(int64_t channels, std::initializer_list<const void*> pointers) {
  return channels % 4 == 0 && all_aligned16(pointers);
}

// A temporary device buffer from the caching allocator. Freed on the host while kernels
// queued on the compute stream may still use it: the allocator hands it out again only
// to later work on that stream, so the order is kept.
class DeviceBuffer {
 public:
  DeviceBuffer(Device device, size_t bytes)
      : device_(device), ptr_(bytes ? device_alloc(device, bytes) : nullptr) {}
  ~DeviceBuffer() {
    if (ptr_) device_free(device_, ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  Device device_;
  void* ptr_;
};

// SMs of GPU `device`, asked once per device.
inline int sm_count(int device) {
  static std::array<std::atomic<int>, 64> cache{};
  if (device >= 0 && device < static_cast<int>(cache.size())) {
    const int known = cache[device].load(std::memory_order_relaxed);
    if (known > 0) return known;
  }
  int count = 0;
  check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute(multiProcessorCount)");
  count = std::max(count, 1);
  if (device >= 0 && device < static_cast<int>(cache.size())) cache[device].store(count);
  return count;
}

struct RowsShape {
  int64_t channels = 0;
  int64_t seg_rows = 0;  // rows per segment
  int64_t segments = 1;
};

constexpr int kRowThreads = 256;
// Rows one thread walks at least: fewer would make the block's shared-memory reduction
// and the partials a large share of the work.
constexpr int64_t kMinRowsPerThread = 8;
constexpr int kUnroll = 4;  // rows whose loads are in flight together per thread
constexpr unsigned kMaxGridYZ = 65535;

template <int V, int Q, class Op>
__global__ void __launch_bounds__(kRowThreads)
    channel_rows_kernel(Op op, RowsShape shape, int groups, double* partials) {
  constexpr int kQ = Q > 0 ? Q : 1;
  const int g = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const bool active = g < groups;
  const int64_t c = static_cast<int64_t>(g) * V;
  const int64_t channels = shape.channels;
  const int64_t stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  const int64_t start = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  for (int64_t seg = blockIdx.z; seg < shape.segments; seg += gridDim.z) {
    double acc[kQ][V] = {};
    if (active) {
      const auto constants = op.template prepare<V>(seg, c);
      const int64_t first = seg * shape.seg_rows;
      int64_t r = start;
      // Loads of kUnroll rows first, then their arithmetic: a store in consume could
      // alias a later row's input as far as the compiler knows, which would otherwise
      // serialise every row on its load latency.
      for (; r + (kUnroll - 1) * stride < shape.seg_rows; r += kUnroll * stride) {
        decltype(op.template load<V>(0)) in[kUnroll];
#pragma unroll
        for (int k = 0; k < kUnroll; ++k)
          in[k] = op.template load<V>((first + r + k * stride) * channels + c);
#pragma unroll
        for (int k = 0; k < kUnroll; ++k) {
          op.template consume<V>(constants, in[k], (first + r + k * stride) * channels + c, acc);
        }
      }
      for (; r < shape.seg_rows; r += stride) {
        const int64_t o = (first + r) * channels + c;
        op.template consume<V>(constants, op.template load<V>(o), o, acc);
      }
    }
    if constexpr (Q > 0) {
      // Shared layout [q][lane][y][x]; a fixed tree over y (blockDim.y need not be a
      // power of two: `half` is the largest power of two below it).
      extern __shared__ double shared_sums[];
      const int bx = blockDim.x, by = blockDim.y;
      auto at = [&](int q, int v, int y) -> double& {
        return shared_sums[((q * V + v) * by + y) * bx + threadIdx.x];
      };
#pragma unroll
      for (int q = 0; q < Q; ++q) {
#pragma unroll
        for (int v = 0; v < V; ++v) at(q, v, threadIdx.y) = acc[q][v];
      }
      __syncthreads();
      int half = 1;
      while (half * 2 < by) half *= 2;
      for (; half > 0; half /= 2) {
        if (static_cast<int>(threadIdx.y) < half && static_cast<int>(threadIdx.y) + half < by) {
#pragma unroll
          for (int q = 0; q < Q; ++q) {
#pragma unroll
            for (int v = 0; v < V; ++v) at(q, v, threadIdx.y) += at(q, v, threadIdx.y + half);
          }
        }
        __syncthreads();
      }
      if (threadIdx.y == 0 && active) {
        double* out = partials + (seg * gridDim.y + blockIdx.y) * Q * channels;
#pragma unroll
        for (int q = 0; q < Q; ++q) {
#pragma unroll
          for (int v = 0; v < V; ++v) out[q * channels + c + v] = at(q, v, 0);
        }
      }
      __syncthreads();  // the next segment reuses the shared sums
    }
  }
}

constexpr int kCombineX = 32, kCombineY = 16;

// Adds the slabs' partials of each (segment, channel) in slab order (per lane y, then a
// fixed tree over y) and calls finish(segment, channel, sums).
template <int Q, class Finish>
__global__ void __launch_bounds__(kCombineX* kCombineY)
    combine_partials_kernel(Finish finish, const double* partials, int64_t channels,
                            int64_t segments, int slabs) {
  __shared__ double lanes[kCombineY][Q][kCombineX];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kCombineX + threadIdx.x;
  for (int64_t seg = blockIdx.y; seg < segments; seg += gridDim.y) {
    double s[Q] = {};
    if (c < channels) {
      const double* p = partials + seg * slabs * Q * channels + c;
#pragma unroll 4
      for (int slab = threadIdx.y; slab < slabs; slab += kCombineY) {
#pragma unroll
        for (int q = 0; q < Q; ++q) s[q] += p[(static_cast<int64_t>(slab) * Q + q) * channels];
      }
    }
#pragma unroll
    for (int q = 0; q < Q; ++q) lanes[threadIdx.y][q][threadIdx.x] = s[q];
    __syncthreads();
    for (int half = kCombineY / 2; half > 0; half /= 2) {
      if (static_cast<int>(threadIdx.y) < half) {
#pragma unroll
        for (int q = 0; q < Q; ++q) {
          lanes[threadIdx.y][q][threadIdx.x] += lanes[threadIdx.y + half][q][threadIdx.x];
        }
      }
      __syncthreads();
    }
    if (threadIdx.y == 0 && c < channels) {
      double total[Q];
#pragma unroll
      for (int q = 0; q < Q; ++q) total[q] = lanes[0][q][threadIdx.x];
      finish(seg, c, total);
    }
    __syncthreads();
  }
}

namespace detail {

template <int V, int Q, class Op, class Finish>
void run_rows(const Op& op, const Finish* finish, const RowsShape& shape, Device device,
              const char* name) {
  const int64_t groups64 = shape.channels / V;
  RESIDUAL_CHECK(groups64 <= (int64_t{1} << 30), name, ": ", shape.channels,
                 " channels are more than the CUDA kernel supports");
  const int groups = static_cast<int>(groups64);
  const int tx = std::min(groups, 32);
  const int ty = kRowThreads / tx;
  const unsigned gx = static_cast<unsigned>((groups + tx - 1) / tx);
  const int64_t segs_grid = std::min<int64_t>(shape.segments, kMaxGridYZ);
  const size_t shared = Q > 0 ? sizeof(double) * Q * V * tx * ty : 0;
  auto kernel = channel_rows_kernel<V, Q, Op>;
  // One wave of resident blocks, each thread looping over rows: enough loads in flight
  // to saturate memory without a tail of partly filled waves.
  static const int per_sm = [&] {
    int blocks = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
              &blocks, kernel, kRowThreads, Q > 0 ? sizeof(double) * Q * V * kRowThreads : 0),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return std::max(blocks, 1);
  }();
  const int64_t resident = static_cast<int64_t>(per_sm) * sm_count(device.index);
  const int64_t wanted = (shape.seg_rows + ty * kMinRowsPerThread - 1) / (ty * kMinRowsPerThread);
  const int64_t fill = std::max<int64_t>(1, resident / (static_cast<int64_t>(gx) * segs_grid));
  const unsigned slabs =
      static_cast<unsigned>(std::clamp<int64_t>(std::min(wanted, fill), 1, kMaxGridYZ));
  const dim3 block(static_cast<unsigned>(tx), static_cast<unsigned>(ty));
  const dim3 grid(gx, slabs, static_cast<unsigned>(segs_grid));
  const cudaStream_t stream = compute_stream(device.index);
  if constexpr (Q == 0) {
    kernel<<<grid, block, 0, stream>>>(op, shape, groups, nullptr);
    check_launch(name);
  } else {
    DeviceBuffer partials(device, sizeof(double) * shape.segments * slabs * Q * shape.channels);
    kernel<<<grid, block, shared, stream>>>(op, shape, groups, partials.as<double>());
    check_launch(name);
    const dim3 combine_grid(static_cast<unsigned>((shape.channels + kCombineX - 1) / kCombineX),
                            static_cast<unsigned>(segs_grid));
    combine_partials_kernel<Q><<<combine_grid, dim3(kCombineX, kCombineY), 0, stream>>>(
        *finish, partials.as<double>(), shape.channels, shape.segments, static_cast<int>(slabs));
    check_launch(name);
  }
}

}  // namespace detail

// Runs `op` over every row (Q = 0: no sums). `vectorize`: see can_vectorize.
template <class Op>
void apply_rows(const Op& op, bool vectorize, const RowsShape& shape, Device device,
                const char* name) {
  if (shape.channels == 0 || shape.seg_rows == 0 || shape.segments == 0) return;
  DeviceGuard guard(device.index);
  struct None {};
  if (vectorize) {
    detail::run_rows<4, 0, Op, None>(op, nullptr, shape, device, name);
  } else {
    detail::run_rows<1, 0, Op, None>(op, nullptr, shape, device, name);
  }
}

// Runs `op` over every row accumulating Q sums per channel and segment, then calls
// finish(segment, channel, double (&sums)[Q]) on the GPU once per (segment, channel),
// also for segments without rows (their sums are 0).
template <int Q, class Op, class Finish>
void reduce_rows(const Op& op, const Finish& finish, bool vectorize, const RowsShape& shape,
                 Device device, const char* name) {
  static_assert(Q > 0, "reduce_rows needs at least one sum");
  if (shape.channels == 0 || shape.segments == 0) return;
  DeviceGuard guard(device.index);
  if (vectorize) {
    detail::run_rows<4, Q>(op, &finish, shape, device, name);
  } else {
    detail::run_rows<1, Q>(op, &finish, shape, device, name);
  }
}

}  // namespace residual::cuda
