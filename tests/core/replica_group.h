#pragma once
// Fake replicas for synchronised batch-norm tests: k replicas run on std::threads of one
// process, and ReplicaSum adds their buffers through a barrier, as an all-reduce would.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/replica_sum.h"

namespace residual::test {

// One replica: adds nothing (the whole batch is here); counts the calls and their sizes.
class SingleReplica : public ReplicaSum {
 public:
  void sum(double*, int64_t n) override { sizes.push_back(n); }
  std::vector<int64_t> sizes;  // n of every call, in order
};

// k replicas. Each sum() waits until every replica has posted its buffer, then every
// replica adds the buffers in replica order itself (so all get the same bits), then waits
// again before a buffer may be reused. A replica that does not arrive within the timeout
// makes the others throw instead of hanging the test.
class ReplicaGroup {
 public:
  explicit ReplicaGroup(int k) : k_(k), posted_(static_cast<size_t>(k)) {}

  class Member : public ReplicaSum {
   public:
    Member(ReplicaGroup& group, int rank) : group_(group), rank_(rank) {}
    void sum(double* values, int64_t n) override {
      sizes.push_back(n);
      group_.sum(rank_, values, n);
    }
    std::vector<int64_t> sizes;

   private:
    ReplicaGroup& group_;
    int rank_;
  };

  void sum(int rank, double* values, int64_t n) {
    posted_[static_cast<size_t>(rank)] = {values, n};
    wait_for_all();
    std::vector<double> total(static_cast<size_t>(n), 0.0);
    for (const auto& [buffer, size] : posted_) {
      if (size != n) throw std::runtime_error("replicas disagree on the sum's length");
      for (int64_t i = 0; i < n; ++i) total[i] += buffer[i];
    }
    wait_for_all();  // every replica has read every buffer
    for (int64_t i = 0; i < n; ++i) values[i] = total[i];
  }

  // Runs body(rank) on k threads; rethrows the first exception after all have ended.
  void run(const std::function<void(int)>& body) {
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(k_));
    for (int r = 0; r < k_; ++r) {
      threads.emplace_back([&, r] {
        try {
          body(r);
        } catch (...) {
          errors[static_cast<size_t>(r)] = std::current_exception();
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }

 private:
  void wait_for_all() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++arrived_ == k_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return generation_ != generation; })) {
      throw std::runtime_error("a replica never reached the sum: the others would hang");
    }
  }

  int k_;
  std::vector<std::pair<const double*, int64_t>> posted_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace residual::test
