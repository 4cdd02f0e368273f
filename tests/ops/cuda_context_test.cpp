// The CUDA device context on a real GPU: the compute and communication streams, events
// between them, asynchronous zeroing and record_stream. Built only with the CUDA backend
// (it calls the runtime directly); without a GPU each test skips and says why.
//
// To show an ordering rather than hope for one, a stream is held shut by a host function
// that waits for a gate the test opens: whatever the other stream does meanwhile runs
// first unless an event makes it wait.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/caching_allocator.h"
#include "core/device_memory.h"
#include "core/error.h"
#include "ops/cuda/cuda_context.h"

namespace residual::cuda {
namespace {

constexpr size_t kBytes = size_t{64} << 20;

struct Gate {
  std::atomic<bool> open{false};
  std::atomic<bool> timed_out{false};
};

// Runs on the stream: it stays there until the test opens the gate (or 10 s pass, so a
// broken test fails instead of hanging).
void CUDART_CB wait_for_gate(void* arg) {
  auto* gate = static_cast<Gate*>(arg);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!gate->open) {
    if (std::chrono::steady_clock::now() > deadline) {
      gate->timed_out = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void hold(CudaStream stream, Gate& gate) {
  ASSERT_EQ(cudaLaunchHostFunc(stream, wait_for_gate, &gate), cudaSuccess);
}

class CudaContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) {
      GTEST_SKIP() << "no CUDA device: the CUDA runtime sees no GPU on this machine";
    }
  }
};

TEST_F(CudaContextTest, EachGpuHasTwoNonBlockingStreamsMadeOnce) {
  const CudaStream compute = compute_stream(0);
  const CudaStream comm = comm_stream(0);
  ASSERT_NE(compute, nullptr);
  ASSERT_NE(comm, nullptr);
  EXPECT_NE(compute, comm);
  EXPECT_EQ(compute_stream(0), compute);
  EXPECT_EQ(comm_stream(0), comm);
  for (CudaStream s : {compute, comm}) {
    unsigned flags = 0;
    ASSERT_EQ(cudaStreamGetFlags(s, &flags), cudaSuccess);
    EXPECT_EQ(flags & cudaStreamNonBlocking, unsigned{cudaStreamNonBlocking});
  }
  EXPECT_THROW(compute_stream(cuda_device_count()), Error);
  EXPECT_THROW(comm_stream(-1), Error);
}

// The compute stream writes 0x7f into a buffer while held; the communication stream copies
// the buffer out. Ordered by an event (or stream_wait) the copy sees 0x7f, not the 0x11
// that was there before.
void check_ordering(bool use_stream_wait) {
  void* written = device_alloc(Device::cuda(0), kBytes);
  void* copied = device_alloc(Device::cuda(0), kBytes);
  const CudaStream compute = compute_stream(0), comm = comm_stream(0);
  ASSERT_EQ(cudaMemsetAsync(written, 0x11, kBytes, compute), cudaSuccess);
  Gate gate;
  hold(compute, gate);
  ASSERT_EQ(cudaMemsetAsync(written, 0x7f, kBytes, compute), cudaSuccess);
  CudaEvent event(0);
  if (use_stream_wait) {
    stream_wait(0, comm, compute);
  } else {
    event.record(compute);
    EXPECT_FALSE(event.done());  // the compute stream is held: it cannot be there yet
    event.wait(comm);
  }
  ASSERT_EQ(cudaMemcpyAsync(copied, written, kBytes, cudaMemcpyDeviceToDevice, comm),
            cudaSuccess);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // room to overtake, if it could
  gate.open = true;
  synchronize(0);
  EXPECT_FALSE(gate.timed_out);
  if (!use_stream_wait) {
    EXPECT_TRUE(event.done());
  }
  std::vector<unsigned char> host(kBytes);
  device_copy(host.data(), Device::cpu(), copied, Device::cuda(0), kBytes);
  size_t wrong = 0;
  for (unsigned char b : host) wrong += b != 0x7f;
  EXPECT_EQ(wrong, 0u) << "the communication stream ran ahead of the compute stream";
  device_free(Device::cuda(0), written);
  device_free(Device::cuda(0), copied);
}

TEST_F(CudaContextTest, AnEventOrdersTheCommStreamAfterTheComputeStream) {
  check_ordering(/*use_stream_wait=*/false);
}

TEST_F(CudaContextTest, StreamWaitOrdersTheCommStreamAfterTheComputeStream) {
  check_ordering(/*use_stream_wait=*/true);
}

// Zeroing is queued, not waited for: it returns while the compute stream is held (the
// old kernel + cudaDeviceSynchronize would have sat there until the gate timed out).
TEST_F(CudaContextTest, ZeroingReturnsWithoutWaitingForTheGpu) {
  void* buffer = device_alloc(Device::cuda(0), kBytes);
  Gate gate;
  hold(compute_stream(0), gate);
  const auto start = std::chrono::steady_clock::now();
  device_memset_zero(Device::cuda(0), buffer, kBytes);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  gate.open = true;
  synchronize(0);
  EXPECT_LT(seconds, 1.0);
  EXPECT_FALSE(gate.timed_out) << "device_memset_zero waited for the held stream";
  std::vector<unsigned char> host(kBytes, 1);
  device_copy(host.data(), Device::cpu(), buffer, Device::cuda(0), kBytes);
  size_t nonzero = 0;
  for (unsigned char b : host) nonzero += b != 0;
  EXPECT_EQ(nonzero, 0u);
  device_free(Device::cuda(0), buffer);
}

// A block the communication stream reads is not handed out again until that stream has
// got past the read, even though the host freed it long before.
TEST_F(CudaContextTest, RecordStreamKeepsABlockUntilTheCommStreamIsDone) {
  cuda_backend::release_cached_memory();  // no older block of this size to muddle it
  const size_t bytes = (size_t{3} << 20) + 12345;
  Gate gate;
  hold(comm_stream(0), gate);
  void* gradients = device_alloc(Device::cuda(0), bytes);
  record_stream(static_cast<char*>(gradients) + 4096, comm_stream(0));
  device_free(Device::cuda(0), gradients);
  void* meanwhile = device_alloc(Device::cuda(0), bytes);
  EXPECT_NE(meanwhile, gradients) << "reused while the communication stream may read it";
  gate.open = true;
  synchronize(0);
  void* after = device_alloc(Device::cuda(0), bytes);
  EXPECT_EQ(after, gradients) << "not reused once the communication stream was done";
  EXPECT_FALSE(gate.timed_out);
  device_free(Device::cuda(0), meanwhile);
  device_free(Device::cuda(0), after);
}

TEST_F(CudaContextTest, EventsMoveAndAMovedFromEventIsAnError) {
  CudaEvent a(0);
  a.record(compute_stream(0));
  CudaEvent b(std::move(a));
  EXPECT_EQ(a.handle(), nullptr);  // NOLINT(bugprone-use-after-move): the point
  EXPECT_THROW(a.synchronize(), Error);
  b.synchronize();
  EXPECT_TRUE(b.done());
  CudaEvent c(0);
  c = std::move(b);
  EXPECT_TRUE(c.done());
}

}  // namespace
}  // namespace residual::cuda
