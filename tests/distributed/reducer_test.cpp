// The Reducer in one process (a local communicator, and a recording one): buckets in
// reverse order of use under their caps, launched in order as soon as they are full,
// accumulation that communicates once, and a clear error instead of a wait forever.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "distributed/reducer.h"

namespace residual {
namespace {

// Records the collectives and doubles every value (as if a second rank held the same).
class RecordingCommunicator : public Communicator {
 public:
  struct Done : Work {
    bool test() override { return true; }
    void wait() override {}
  };
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::unique_ptr<Work> all_reduce_async(float* data, int64_t n, const char* what) override {
    log_.add(CollectiveKind::kAllReduce, n * 4, what);
    launches.push_back(what);
    for (int64_t i = 0; i < n; ++i) data[i] *= 2;
    return std::make_unique<Done>();
  }
  void all_reduce(double*, int64_t, const char*) override {}
  void all_reduce_max(int64_t*, int64_t, const char*) override {}
  void broadcast(void*, int64_t, int, const char*) override {}
  void all_gather(const void*, int64_t, void*, const char*) override {}
  void barrier(const char*) override {}
  std::unique_ptr<Communicator> split(int, const char*) override { return nullptr; }
  std::vector<std::string> launches;
};

std::deque<Parameter> make_params(const std::vector<int64_t>& sizes) {
  std::deque<Parameter> params;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Parameter p;
    p.name = "p" + std::to_string(i);
    p.value = Tensor::zeros(Shape{sizes[i]});
    p.grad = Tensor::zeros(Shape{sizes[i]});
    params.push_back(std::move(p));
  }
  return params;
}

std::vector<Parameter*> pointers(std::deque<Parameter>& params) {
  std::vector<Parameter*> out;
  for (Parameter& p : params) out.push_back(&p);
  return out;
}

TEST(Reducer, BucketsFollowReverseOrderOfUseUnderTheirCaps) {
  auto params = make_params({100, 300, 50, 50, 400, 10});  // floats
  RecordingCommunicator comm;
  ReducerConfig config;
  config.first_bucket_cap_bytes = 40 * 4;  // p5 (10) alone; p4 (400) would overflow it
  config.bucket_cap_bytes = 500 * 4;
  Reducer reducer(pointers(params), comm, config);
  // Reverse order: p5 | p4, p3, p2 (500) | p1, p0 (400)
  EXPECT_EQ(reducer.bucket_sizes(), (std::vector<int64_t>{10, 500, 400}));
}

TEST(Reducer, AParameterLargerThanTheCapGetsABucketOfItsOwn) {
  auto params = make_params({1000, 10, 10});
  RecordingCommunicator comm;
  ReducerConfig config;
  config.first_bucket_cap_bytes = 4;
  config.bucket_cap_bytes = 100 * 4;
  Reducer reducer(pointers(params), comm, config);
  EXPECT_EQ(reducer.bucket_sizes(), (std::vector<int64_t>{10, 10, 1000}));
}

TEST(Reducer, BucketsLaunchInOrderAsSoonAsTheyAreCompleteAndSumsComeBack) {
  auto params = make_params({2, 2, 2});
  RecordingCommunicator comm;
  ReducerConfig config;
  config.first_bucket_cap_bytes = 8;
  config.bucket_cap_bytes = 8;
  Reducer reducer(pointers(params), comm, config);
  ASSERT_EQ(reducer.bucket_count(), 3);
  reducer.begin_backward(true, true);
  for (int i = 2; i >= 0; --i) {
    params[i].grad.fill(static_cast<float>(i + 1));
    reducer.on_gradient_ready(params[i]);
    EXPECT_EQ(comm.launches.size(), static_cast<size_t>(3 - i)) << "bucket of p" << i << " not launched at once";
  }
  reducer.finalize();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(params[i].grad.f32()[1], 2.f * (i + 1));
  EXPECT_EQ(comm.launches, (std::vector<std::string>{"gradient bucket 0", "gradient bucket 1", "gradient bucket 2"}));
}

TEST(Reducer, OutOfOrderCompletionStillLaunchesInBucketOrder) {
  auto params = make_params({2, 2});
  RecordingCommunicator comm;
  ReducerConfig config;
  config.first_bucket_cap_bytes = 8;
  config.bucket_cap_bytes = 8;
  Reducer reducer(pointers(params), comm, config);
  reducer.begin_backward(true, true);
  reducer.on_gradient_ready(params[0]);  // bucket 1 complete first
  EXPECT_TRUE(comm.launches.empty());
  reducer.on_gradient_ready(params[1]);
  EXPECT_EQ(comm.launches, (std::vector<std::string>{"gradient bucket 0", "gradient bucket 1"}));
  reducer.finalize();
}

TEST(Reducer, AccumulationAddsMicroBatchesAndCommunicatesOnce) {
  auto params = make_params({3});
  RecordingCommunicator comm;
  ReducerConfig config;
  config.gradient_as_bucket_view = false;  // each backward overwrites its gradients
  Reducer reducer(pointers(params), comm, config);
  for (int micro = 0; micro < 3; ++micro) {
    reducer.begin_backward(micro == 0, micro == 2);
    params[0].grad.fill(static_cast<float>(micro + 1));  // backward overwrites
    reducer.on_gradient_ready(params[0]);
    EXPECT_EQ(comm.launches.size(), micro == 2 ? 1u : 0u);
  }
  reducer.finalize();
  EXPECT_EQ(params[0].grad.f32()[0], 2.f * (1 + 2 + 3));
}

TEST(Reducer, GradientsBecomeViewsIntoTheBucketsAndNeedNoCopies) {
  auto params = make_params({2, 3});
  params[0].grad.fill(5.f);
  RecordingCommunicator comm;
  Reducer reducer(pointers(params), comm);  // one bucket: p1 then p0
  EXPECT_EQ(params[0].grad.f32()[1], 5.f) << "the gradient's value moved with it";
  EXPECT_EQ(params[0].grad.f32(), params[1].grad.f32() + 3) << "not laid out in the bucket";
  reducer.begin_backward(true, true);
  params[1].grad.fill(1.f);
  reducer.on_gradient_ready(params[1]);
  reducer.on_gradient_ready(params[0]);
  reducer.finalize();
  EXPECT_EQ(params[0].grad.f32()[0], 10.f);
  EXPECT_EQ(params[1].grad.f32()[2], 2.f);
  // A gradient replaced by other storage is copied in instead.
  params[1].grad = Tensor::zeros(Shape{3});
  params[1].grad.fill(4.f);
  reducer.begin_backward(true, true);
  reducer.on_gradient_ready(params[1]);
  reducer.on_gradient_ready(params[0]);
  reducer.finalize();
  EXPECT_EQ(params[1].grad.f32()[0], 8.f);
}

TEST(Reducer, AGradientNeverReportedIsAnErrorNamingIt) {
  auto params = make_params({2, 2});
  RecordingCommunicator comm;
  Reducer reducer(pointers(params), comm);
  reducer.begin_backward(true, true);
  reducer.on_gradient_ready(params[1]);
  try {
    reducer.finalize();
    FAIL() << "finalize() waited for nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("p0"), std::string::npos) << e.what();
  }
}

TEST(Reducer, AGradientReportedTwiceIsAnError) {
  auto params = make_params({2});
  RecordingCommunicator comm;
  Reducer reducer(pointers(params), comm);
  reducer.begin_backward(true, true);
  reducer.on_gradient_ready(params[0]);
  EXPECT_THROW(reducer.on_gradient_ready(params[0]), Error);
}

TEST(Reducer, LocalCommunicatorLeavesGradientsAsTheyAre) {
  auto params = make_params({5});
  auto comm = make_local_communicator();
  Reducer reducer(pointers(params), *comm);
  reducer.begin_backward(true, true);
  params[0].grad.fill(0.25f);
  reducer.on_gradient_ready(params[0]);
  reducer.finalize();
  EXPECT_EQ(params[0].grad.f32()[4], 0.25f);
}

}  // namespace
}  // namespace residual
