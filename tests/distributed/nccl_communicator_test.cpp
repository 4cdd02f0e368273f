// The NCCL communicator at world size 1 (over the local communicator): device buffers
// through NCCL, host buffers through the bootstrap, the Reducer on GPU gradients. These
// skip, saying why, on a machine without a GPU or a build without NCCL; there the tests
// that run check the clear failures instead.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "core/device_memory.h"
#include "core/error.h"
#include "distributed/nccl_communicator.h"
#include "distributed/reducer.h"
#include "ops/ops.h"
#include "tests/core/tensor_test_peer.h"

namespace residual {
namespace {

std::string no_nccl_reason() {
  if (!nccl_compiled()) return "this build has no NCCL communicator (CUDA or NCCL not found)";
  if (cuda_device_count() == 0) return "no CUDA device: the CUDA runtime sees no GPU on this machine";
  return "";
}

#define SKIP_WITHOUT_NCCL()                                      \
  do {                                                           \
    const std::string reason = no_nccl_reason();                 \
    if (!reason.empty()) GTEST_SKIP() << reason;                 \
  } while (false)

// Distinct values, some negative, none a sum of others by accident.
std::vector<float> ramp(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 0.25f * static_cast<float>(i) - 3.5f;
  return v;
}

Tensor on_gpu(const std::vector<float>& values) {
  Tensor host = Tensor::empty(Shape{static_cast<int64_t>(values.size())});
  std::memcpy(host.f32(), values.data(), values.size() * sizeof(float));
  return host.to(Device::cuda(0));
}

std::vector<float> to_host(const Tensor& t) {
  const Tensor host = t.to(Device::cpu());
  return std::vector<float>(host.f32(), host.f32() + host.numel());
}

TEST(NcclCommunicator, WithoutNcclOrAGpuFailsWithOneClearLine) {
  if (no_nccl_reason().empty()) GTEST_SKIP() << "this machine has NCCL and a GPU: the GPU tests run instead";
  auto local = make_local_communicator();
  for (int gpu : {-1, 0}) {
    try {
      make_nccl_communicator(*local, gpu);
      ADD_FAILURE() << "made an NCCL communicator without " << no_nccl_reason();
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      if (!nccl_compiled()) {
        EXPECT_NE(message.find("built without CUDA"), std::string::npos) << message;
      } else if (gpu < 0) {
        EXPECT_NE(message.find("sees no CUDA device"), std::string::npos) << message;
      } else {
        EXPECT_NE(message.find("needs a GPU"), std::string::npos) << message;
      }
    }
  }
}

TEST(NcclCommunicator, AllReduceOfOneRankLeavesADeviceBufferUnchanged) {
  SKIP_WITHOUT_NCCL();
  auto local = make_local_communicator();
  auto nccl = make_nccl_communicator(*local, 0);
  EXPECT_EQ(nccl->rank(), 0);
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_TRUE(nccl->takes_device_memory());
  const std::vector<float> values = ramp(100003);  // not a multiple of anything NCCL likes
  Tensor x = on_gpu(values);
  nccl->all_reduce(x.device_f32(), x.numel(), "test buffer");
  EXPECT_EQ(to_host(x), values);
  // NCCL's collectives are in the bootstrap's log too (the trainer's fingerprint).
  EXPECT_NE(nccl->log().history().find("all-reduce 390.6 KB (test buffer)"), std::string::npos)
      << nccl->log().history();
  EXPECT_NE(local->log().history().find("(test buffer)"), std::string::npos) << local->log().history();
}

TEST(NcclCommunicator, AsyncWorkCompletesAndTestTurnsTrue) {
  SKIP_WITHOUT_NCCL();
  auto local = make_local_communicator();
  auto nccl = make_nccl_communicator(*local, 0);
  const std::vector<float> values = ramp(1 << 20);
  Tensor a = on_gpu(values), b = on_gpu(values);
  auto first = nccl->all_reduce_async(a.device_f32(), a.numel(), "bucket 0");
  auto second = nccl->all_reduce_async(b.device_f32(), b.numel(), "bucket 1");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!second->test()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the second all-reduce never completed";
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_TRUE(first->test());  // one stream: in order
  first->wait();
  second->wait();
  second->wait();  // twice is harmless
  EXPECT_EQ(to_host(a), values);
  EXPECT_EQ(to_host(b), values);
}

TEST(NcclCommunicator, ControlPlaneCollectivesOnHostAndDeviceMemory) {
  SKIP_WITHOUT_NCCL();
  auto local = make_local_communicator();
  auto nccl = make_nccl_communicator(*local, 0);
  // Host memory: through the bootstrap.
  double sums[3] = {1.5, -2.0, 1e300};
  nccl->all_reduce(sums, 3, "step statistics");
  EXPECT_EQ(sums[2], 1e300);
  int64_t flags[2] = {7, -1};
  nccl->all_reduce_max(flags, 2, "flags");
  EXPECT_EQ(flags[0], 7);
  char text[16] = "rank 0's text";
  nccl->broadcast(text, sizeof(text), 0, "text");
  EXPECT_STREQ(text, "rank 0's text");
  int32_t mine = 42, all = 0;
  nccl->all_gather(&mine, sizeof(mine), &all, "start-up check");
  EXPECT_EQ(all, 42);
  nccl->barrier("barrier");
  // Device memory: through NCCL, as doubles, int64 and bytes (float32 tensors' storage
  // holds them: the Tensor has no float64 or int64 dtype).
  const Device gpu = Device::cuda(0);
  Tensor d = Tensor::empty(Shape{8}, gpu);
  const double host_d[4] = {0.1, -0.2, 3e-310, 1e308};
  device_copy(d.device_raw(), gpu, host_d, Device::cpu(), sizeof(host_d));
  nccl->all_reduce(static_cast<double*>(d.device_raw()), 4, "batch-norm statistics");
  double back_d[4] = {};
  device_copy(back_d, Device::cpu(), d.device_raw(), gpu, sizeof(back_d));
  EXPECT_EQ(std::memcmp(back_d, host_d, sizeof(host_d)), 0);
  Tensor m = Tensor::empty(Shape{4}, gpu);
  const int64_t host_m[2] = {int64_t{1} << 40, -5};
  device_copy(m.device_raw(), gpu, host_m, Device::cpu(), sizeof(host_m));
  nccl->all_reduce_max(static_cast<int64_t*>(m.device_raw()), 2, "device flags");
  nccl->broadcast(m.device_raw(), sizeof(host_m), 0, "device bytes");
  int64_t back_m[2] = {};
  device_copy(back_m, Device::cpu(), m.device_raw(), gpu, sizeof(back_m));
  EXPECT_EQ(back_m[0], host_m[0]);
  EXPECT_EQ(back_m[1], host_m[1]);
  const std::vector<float> values = ramp(33);
  Tensor in = on_gpu(values), out = on_gpu(std::vector<float>(33, 0.f));
  nccl->all_gather(in.device_raw(), static_cast<int64_t>(in.nbytes()), out.device_raw(), "device gather");
  EXPECT_EQ(to_host(out), values);
  // Mixed host and device memory is a clear error, not a crash.
  EXPECT_THROW(nccl->all_gather(&mine, sizeof(mine), out.device_raw(), "mixed"), Error);
}

TEST(NcclCommunicator, SplitGivesAWorkingNcclGroupSharingPhaseAndDeadline) {
  SKIP_WITHOUT_NCCL();
  auto local = make_local_communicator();
  auto nccl = make_nccl_communicator(*local, 0);
  auto group = nccl->split(0, "batch-norm group split");
  ASSERT_TRUE(group);
  EXPECT_EQ(group->size(), 1);
  EXPECT_TRUE(group->takes_device_memory());
  local->set_phase("step 3");
  local->set_timeout(std::chrono::seconds(17));
  EXPECT_EQ(group->phase(), "step 3");
  EXPECT_EQ(group->timeout(), std::chrono::seconds(17));
  const std::vector<float> values = ramp(1000);
  Tensor x = on_gpu(values);
  group->all_reduce(x.device_f32(), x.numel(), "in the group");
  EXPECT_EQ(to_host(x), values);
}

std::deque<Parameter> gpu_params(const std::vector<int64_t>& sizes) {
  std::deque<Parameter> params;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Parameter p;
    p.name = "p" + std::to_string(i);
    p.value = Tensor::zeros(Shape{sizes[i]}, Device::cuda(0));
    p.grad = Tensor::zeros(Shape{sizes[i]}, Device::cuda(0));
    params.push_back(std::move(p));
  }
  return params;
}

void run_reducer(bool views, int micro_batches) {
  auto local = make_local_communicator();
  auto nccl = make_nccl_communicator(*local, 0);
  std::deque<Parameter> params = gpu_params({300, 7, 5000});
  std::vector<Parameter*> pointers;
  for (Parameter& p : params) pointers.push_back(&p);
  ReducerConfig config;
  config.first_bucket_cap_bytes = 8 * 4;
  config.bucket_cap_bytes = 400 * 4;
  config.gradient_as_bucket_view = views;
  Reducer reducer(pointers, *nccl, config);
  EXPECT_EQ(reducer.bucket_count(), 3);
  std::vector<std::vector<float>> expected(params.size());
  for (int m = 0; m < micro_batches; ++m) {
    reducer.begin_backward(m == 0, m == micro_batches - 1);
    for (size_t k = params.size(); k-- > 0;) {  // backward order
      std::vector<float> g = ramp(params[k].grad.numel());
      for (float& v : g) v *= static_cast<float>(m + 1);
      if (m == 0) {
        expected[k] = g;
      } else {
        for (size_t i = 0; i < g.size(); ++i) expected[k][i] += g[i];
      }
      params[k].grad.copy_from(on_gpu(g));
      reducer.on_gradient_ready(params[k]);
    }
  }
  reducer.finalize();
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_EQ(params[k].grad.device(), Device::cuda(0));
    EXPECT_EQ(to_host(params[k].grad), expected[k]) << params[k].name;
  }
}

TEST(NcclCommunicator, ReducerSumsGpuGradientsInsideTheBuckets) {
  SKIP_WITHOUT_NCCL();
  run_reducer(true, 1);
}

TEST(NcclCommunicator, ReducerCopiesAndAccumulatesGpuGradients) {
  SKIP_WITHOUT_NCCL();
  if (!ops::add_forward.has_kernel(DeviceType::kCuda)) {
    GTEST_SKIP() << "add_forward has no CUDA kernel yet (accumulation adds with it)";
  }
  run_reducer(false, 1);
  run_reducer(false, 3);
}

// Runs everywhere: the gradients are host memory labelled cuda:0, and the reducer refuses
// them before it allocates or copies anything.
TEST(NcclCommunicator, ReducerRefusesGpuGradientsWithAHostOnlyCommunicator) {
  // Two ranks that sum host memory (MPI's kind): device gradients would crash it.
  class TwoHostRanks : public Communicator {
   public:
    int rank() const override { return 0; }
    int size() const override { return 2; }
    std::unique_ptr<Work> all_reduce_async(float*, int64_t, const char*) override { return nullptr; }
    void all_reduce(double*, int64_t, const char*) override {}
    void all_reduce_max(int64_t*, int64_t, const char*) override {}
    void broadcast(void*, int64_t, int, const char*) override {}
    void all_gather(const void*, int64_t, void*, const char*) override {}
    void barrier(const char*) override {}
    std::unique_ptr<Communicator> split(int, const char*) override { return nullptr; }
  } host_only;
  std::deque<Parameter> params(1);
  params[0].name = "p0";
  params[0].value = TensorTestPeer::labelled(Tensor::zeros(Shape{4}), Device::cuda(0));
  params[0].grad = TensorTestPeer::labelled(Tensor::zeros(Shape{4}), Device::cuda(0));
  try {
    Reducer reducer({&params[0]}, host_only);
    ADD_FAILURE() << "a reducer of GPU gradients over a host-only communicator";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("need a communicator that sums device memory"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace residual
