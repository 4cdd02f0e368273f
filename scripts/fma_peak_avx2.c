// The fp32 FMA ceiling on CPUs without AVX-512, where ../shared/peer/fma_peak.c (the peer's
// AVX-512 version) cannot run. Same method: 12 independent FMA chains per thread, best of 3.
// Build: cc -O3 -march=native -fopenmp scripts/fma_peak_avx2.c -o /tmp/fma_peak_avx2
// Run:   OMP_NUM_THREADS=2 /tmp/fma_peak_avx2   (docs/BENCHMARKS.md, 2026-12-02)
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
int main(void) {
  const long iters = 200000000L;
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    double t0 = omp_get_wtime();
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
      __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
      for (int k = 0; k < 12; ++k) a[k] = _mm256_set1_ps((float)k);
      for (long i = 0; i < iters / 12; ++i)
        for (int k = 0; k < 12; ++k) a[k] = _mm256_fmadd_ps(a[k], m, c);
      float tmp[8];
      for (int k = 0; k < 12; ++k) { _mm256_storeu_ps(tmp, a[k]); for (int j = 0; j < 8; ++j) sink += tmp[j]; }
    }
    double s = omp_get_wtime() - t0;
    double gflops = omp_get_max_threads() * (double)(iters / 12) * 12 * 8 * 2 / s / 1e9;
    if (gflops > best) best = gflops;
    if (sink == 42) printf(" ");
  }
  printf("fma_peak_avx2 threads=%d gflops=%.1f\n", omp_get_max_threads(), best);
  return 0;
}
