// The MPI communicator, the Reducer and synchronized batch norm across real ranks. This
// binary has its own main and runs under `mpiexec -np 2` and `-np 3` (CTest); every rank
// runs every test, rank 0 reports, and the exit status is the worst of all ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <random>

#include <nlohmann/json.hpp>

#include "core/layer_registry.h"
#include "distributed/job.h"
#include "distributed/mpi_communicator.h"
#include "distributed/reducer.h"
#include "distributed/sync_batch_norm.h"

namespace residual {
namespace {

Communicator& world() { return world_communicator(); }

TEST(MpiCommunicator, AllReduceSumsExactlyAndIdenticallyOnEveryRank) {
  const int k = world().size(), r = world().rank();
  std::vector<float> f(1000);
  std::vector<double> d(7);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>((r + 1) * (i % 13));
  for (size_t i = 0; i < d.size(); ++i) d[i] = (r + 1) * 0.5 * static_cast<double>(i);
  world().all_reduce(f.data(), static_cast<int64_t>(f.size()), "test floats");
  world().all_reduce(d.data(), static_cast<int64_t>(d.size()), "test doubles");
  const double ranks_sum = k * (k + 1) / 2.0;
  for (size_t i = 0; i < f.size(); ++i) ASSERT_EQ(f[i], static_cast<float>(ranks_sum * (i % 13)));
  for (size_t i = 0; i < d.size(); ++i) ASSERT_EQ(d[i], ranks_sum * 0.5 * static_cast<double>(i));
  int64_t m[2] = {r, -r};
  world().all_reduce_max(m, 2, "test max");
  EXPECT_EQ(m[0], k - 1);
  EXPECT_EQ(m[1], 0);
}

TEST(MpiCommunicator, BroadcastAllGatherBarrierAndSplit) {
  const int k = world().size(), r = world().rank();
  char text[32] = {};  // room for "from " and any int
  if (r == k - 1) std::snprintf(text, sizeof(text), "from %d", r);
  world().broadcast(text, sizeof(text), k - 1, "test broadcast");
  EXPECT_EQ(std::string(text), "from " + std::to_string(k - 1));
  std::vector<int32_t> all(static_cast<size_t>(k));
  const int32_t mine = 10 * r;
  world().all_gather(&mine, sizeof(mine), all.data(), "test gather");
  for (int i = 0; i < k; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], 10 * i);
  world().barrier("test barrier");
  // Groups of two consecutive ranks (the last alone when k is odd).
  std::unique_ptr<Communicator> pair = world().split(r / 2, "test split");
  EXPECT_EQ(pair->rank(), r % 2);
  EXPECT_EQ(pair->size(), std::min(2, k - (r / 2) * 2));
  double v = r;
  pair->all_reduce(&v, 1, "test group sum");
  const double expected = r / 2 * 2 + (pair->size() == 2 ? r / 2 * 2 + 1 : 0);
  EXPECT_EQ(v, expected);
}

TEST(MpiCommunicator, CollectiveHistoryCountsEveryCall) {
  const uint64_t before = world().log().issued();
  world().barrier("one");
  double x = 1;
  world().all_reduce(&x, 1, "two");
  EXPECT_EQ(world().log().issued(), before + 2);
  EXPECT_NE(world().log().history().find("all-reduce 8 B (two)"), std::string::npos);
}

TEST(MpiReducer, SumsEveryRanksGradientsThroughEveryBucket) {
  const int k = world().size(), r = world().rank();
  std::deque<Parameter> params;
  for (int64_t n : {300, 7, 5000, 1, 64}) {
    Parameter p;
    p.name = "p" + std::to_string(params.size());
    p.value = Tensor::zeros(Shape{n});
    p.grad = Tensor::zeros(Shape{n});
    params.push_back(std::move(p));
  }
  std::vector<Parameter*> pointers;
  for (Parameter& p : params) pointers.push_back(&p);
  ReducerConfig config;
  config.first_bucket_cap_bytes = 256 * 4;
  config.bucket_cap_bytes = 1024 * 4;
  Reducer reducer(pointers, world(), config);
  EXPECT_GE(reducer.bucket_count(), 3);
  for (int step = 0; step < 3; ++step) {
    reducer.begin_backward(true, true);
    for (auto it = pointers.rbegin(); it != pointers.rend(); ++it) {
      Parameter& p = **it;
      for (int64_t i = 0; i < p.grad.numel(); ++i) p.grad.f32()[i] = static_cast<float>((r + 1) * (i % 5 + step));
      reducer.on_gradient_ready(p);
    }
    reducer.finalize();
    for (const Parameter& p : params) {
      for (int64_t i = 0; i < p.grad.numel(); ++i) {
        ASSERT_EQ(p.grad.f32()[i], static_cast<float>(k * (k + 1) / 2 * (i % 5 + step))) << p.name;
      }
    }
  }
}

// Synchronized batch norm over MPI: each rank normalises its uneven share (the last rank
// gets none when the batch is smaller than the world) with the global batch's statistics.
TEST(MpiSyncBatchNorm, EachRanksShareIsNormalisedWithTheWholeBatchsStatistics) {
  const int k = world().size(), r = world().rank();
  LayerRegistry registry = LayerRegistry::with_builtins();
  for (int64_t batch : {int64_t{2}, int64_t{7}, int64_t{32}}) {
    const Shape sample{3, 3, 4};
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(1.f, 2.f);
    Tensor whole = Tensor::empty(sample.with_batch(batch));
    for (int64_t i = 0; i < whole.numel(); ++i) whole.f32()[i] = normal(rng);
    const int64_t begin = batch * r / k, end = batch * (r + 1) / k, row = sample.numel();
    Tensor mine = Tensor::empty(sample.with_batch(end - begin));
    if (end > begin) std::memcpy(mine.f32(), whole.f32() + begin * row, static_cast<size_t>((end - begin) * row) * 4);

    auto reference = registry.create("BatchNormalization", "bn", nlohmann::json::object());
    auto synced = registry.create("BatchNormalization", "bn", nlohmann::json::object());
    reference->build({sample});
    synced->build({sample});
    PassContext plain;
    plain.training = true;
    Tensor y_whole, y_mine;
    reference->forward({&whole}, y_whole, plain);
    CommunicatorReplicaSum sum(world());
    PassContext ctx = plain;
    ctx.sync_batch_norm = &sum;
    synced->forward({&mine}, y_mine, ctx);
    for (int64_t i = 0; i < y_mine.numel(); ++i) {
      ASSERT_NEAR(y_mine.f32()[i], y_whole.f32()[begin * row + i], 1e-5) << "batch " << batch << " element " << i;
    }
    // Backward: dx of the share equals the whole batch's dx there.
    Tensor dy_whole = Tensor::empty(whole.shape());
    for (int64_t i = 0; i < dy_whole.numel(); ++i) dy_whole.f32()[i] = normal(rng) / batch;
    Tensor dy_mine = Tensor::empty(mine.shape());
    if (end > begin) std::memcpy(dy_mine.f32(), dy_whole.f32() + begin * row, static_cast<size_t>((end - begin) * row) * 4);
    Tensor dx_whole, dx_mine;
    reference->backward({&whole}, y_whole, dy_whole, {&dx_whole}, plain);
    synced->backward({&mine}, y_mine, dy_mine, {&dx_mine}, ctx);
    for (int64_t i = 0; i < dx_mine.numel(); ++i) {
      ASSERT_NEAR(dx_mine.f32()[i], dx_whole.f32()[begin * row + i], 1e-5) << "batch " << batch;
    }
  }
}

// Only rank 0 prints gtest's report; the others stay silent unless a test fails there.
class QuietListener : public ::testing::EmptyTestEventListener {
 public:
  explicit QuietListener(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed()) {
      std::fprintf(stderr, "rank %d: %s:%d: %s\n", rank_, result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.summary());
    }
  }

 private:
  int rank_;
};

}  // namespace
}  // namespace residual

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!residual::launched_by_mpi()) {
    std::printf("SKIPPED: run under mpiexec (CTest does): no MPI launcher in the environment\n");
    return 0;
  }
  residual::Communicator& world = residual::world_communicator();
  world.set_timeout(std::chrono::seconds(60));
  if (world.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new residual::QuietListener(world.rank()));
  }
  int64_t failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  world.all_reduce_max(&failed, 1, "test results");
  residual::finalize_mpi();
  return static_cast<int>(failed);
}
