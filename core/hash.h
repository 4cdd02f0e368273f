#pragma once
// The hashes behind residual's stateless random streams and checksums. Both are fixed
// algorithms (not std::hash), so results are the same with any compiler or library.
#include <cstddef>
#include <cstdint>
#include <string>

// Marks a function callable from host and CUDA device code alike (empty outside nvcc), so
// a kernel computes the very same hash as the host instead of a copy of it.
#ifndef RESIDUAL_HOST_DEVICE
#if defined(__CUDACC__)
#define RESIDUAL_HOST_DEVICE __host__ __device__
#else
#define RESIDUAL_HOST_DEVICE
#endif
#endif

namespace residual {

// SplitMix64's finaliser: a bijective mix of 64 bits; random streams are chains of it
// over (seed, epoch, step, index), so any draw can be recomputed without state.
RESIDUAL_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kFnv1aOffset = 1469598103934665603ULL;

// FNV-1a 64 over bytes, continuing from `h`.
inline uint64_t fnv1a(uint64_t h, const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

inline uint64_t fnv1a(const std::string& s) { return fnv1a(kFnv1aOffset, s.data(), s.size()); }

}  // namespace residual
