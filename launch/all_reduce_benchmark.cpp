#include "launch/all_reduce_benchmark.h"

#include <algorithm>
#include <chrono>
#include <deque>

#include "core/layer.h"
#include "distributed/reducer.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Tensor ones(int64_t n, Device device) {
  Tensor host = Tensor::empty(Shape{n});
  host.fill(1.f);
  return device.is_cpu() ? host : host.to(device);
}

// Parameter sizes like a ResNet's: a mix of large kernels and small BN vectors.
std::deque<Parameter> make_parameters(int64_t total_floats, Device device) {
  std::deque<Parameter> params;
  const int64_t pattern[] = {589824, 256, 256, 147456, 128, 128, 36864, 64, 64};
  int64_t left = total_floats;
  for (int i = 0; left > 0; ++i) {
    const int64_t n = std::min(left, pattern[i % 9]);
    Parameter p;
    p.name = "p" + std::to_string(i);
    p.value = Tensor::zeros(Shape{n}, device);
    p.grad = ones(n, device);
    params.push_back(std::move(p));
    left -= n;
  }
  return params;
}

}  // namespace

std::vector<AllReduceBenchRow> run_all_reduce_benchmark(Communicator& world,
                                                        Communicator& gradients, Device device,
                                                        const std::vector<double>& sizes_mb,
                                                        double bucket_cap_mb, int repetitions,
                                                        std::ostream& log) {
  std::vector<AllReduceBenchRow> rows;
  for (double mb : sizes_mb) {
    const int64_t floats = static_cast<int64_t>(mb * (1 << 20) / 4);
    std::deque<Parameter> params = make_parameters(floats, device);
    std::vector<Parameter*> pointers;
    for (Parameter& p : params) pointers.push_back(&p);
    ReducerConfig config;
    config.bucket_cap_bytes = static_cast<int64_t>(bucket_cap_mb * (1 << 20));
    Reducer reducer(pointers, gradients, config);
    const Tensor whole = ones(floats, device);
    std::vector<double> plain, bucketed;
    for (int r = 0; r < repetitions + 1; ++r) {  // the first of each is a warm-up
      world.barrier("all-reduce bench");
      auto t = Clock::now();
      gradients.all_reduce_async(whole.device_f32(), floats, "all-reduce bench: plain")->wait();
      const double p_ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      world.barrier("all-reduce bench");
      t = Clock::now();
      reducer.begin_backward(true, true);
      for (auto it = pointers.rbegin(); it != pointers.rend(); ++it) reducer.on_gradient_ready(**it);
      reducer.finalize();
      const double b_ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      if (r == 0) continue;
      plain.push_back(p_ms);
      bucketed.push_back(b_ms);
    }
    AllReduceBenchRow row;
    row.bytes = floats * 4;
    row.buckets = reducer.bucket_count();
    row.plain_ms = median(plain);
    row.bucketed_ms = median(bucketed);
    row.plain_gb_s = row.bytes / (row.plain_ms * 1e6);
    row.bucketed_gb_s = row.bytes / (row.bucketed_ms * 1e6);
    log << "all_reduce bytes=" << row.bytes << " buckets=" << row.buckets << " plain_ms=" << row.plain_ms
        << " bucketed_ms=" << row.bucketed_ms << " plain_GB/s=" << row.plain_gb_s
        << " bucketed_GB/s=" << row.bucketed_gb_s
        << " ratio=" << row.bucketed_gb_s / row.plain_gb_s << "\n";
    rows.push_back(row);
  }
  return rows;
}

}  // namespace residual
