#pragma once
// Static partition of [0, n) over the OpenMP threads: each thread gets one contiguous
// range, so per-thread partial sums combine in a fixed order and results are
// bit-identical for a given thread count.
#include <omp.h>

#include <cstdint>

namespace residual::ops::cpu {

// Below this many elements a loop runs on one thread: waking the team costs more than
// the loop, and under load a descheduled thread stalls every region it is part of.
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

// `work` (elements touched) below kMinParallelElements runs on the calling thread.
template <typename Fn>
void parallel_ranges(int64_t n, int64_t work, Fn&& fn) {
  if (work < kMinParallelElements) {
    fn(int64_t{0}, n, 0);
    return;
  }
  const int threads = static_cast<int>(n < omp_get_max_threads() ? (n > 0 ? n : 1) : omp_get_max_threads());
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    fn(begin, end, t);
  }
}

inline int max_threads() { return omp_get_max_threads(); }

}  // namespace residual::ops::cpu
