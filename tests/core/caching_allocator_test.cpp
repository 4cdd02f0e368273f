// The caching allocator's logic on a fake device: a raw allocator that counts its calls
// (on host memory, so the thread test can write into blocks), has a capacity to run out
// of, and events that a test completes by hand.
#include "core/caching_allocator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace residual {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

struct FakeEvent {
  AllocatorStream stream = nullptr;
  bool done = false;
};

// Counts are atomics and the event list has its own mutex: the allocator promises to
// call these under its lock, but the fake should not depend on it to stay sane.
class FakeDevice {
 public:
  explicit FakeDevice(size_t capacity = 1024 * kMiB) : capacity_(capacity) {}
  // Like a driver at process exit, takes back what is still allocated (the allocator
  // leaves blocks in use alone).
  ~FakeDevice() {
    for (auto* e : events_) delete e;
    for (auto& entry : sizes_) std::free(entry.first);
  }

  RawDeviceMemory raw() {
    RawDeviceMemory raw;
    raw.alloc = [this](int, size_t bytes) -> void* {
      std::lock_guard<std::mutex> lock(mutex_);
      ++alloc_calls;
      if (used + bytes > capacity_) return nullptr;
      used += bytes;
      ++allocs;
      void* ptr = std::malloc(bytes);
      sizes_[ptr] = bytes;
      return ptr;
    };
    raw.free = [this](int, void* ptr) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++frees;
      used -= sizes_.at(ptr);
      sizes_.erase(ptr);
      std::free(ptr);
    };
    raw.record_event = [this](int, AllocatorStream stream) -> void* {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(new FakeEvent{stream, false});
      ++events_recorded;
      return events_.back();
    };
    raw.event_done = [](void* e) { return static_cast<FakeEvent*>(e)->done; };
    raw.event_wait = [this](void* e) {
      ++event_waits;
      static_cast<FakeEvent*>(e)->done = true;  // the host waits until the stream got there
    };
    raw.event_destroy = [this](void*) { ++events_destroyed; };
    return raw;
  }
  // The work queued so far on `stream` has finished.
  void finish(AllocatorStream stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto* e : events_) {
      if (e->stream == stream) e->done = true;
    }
  }

  std::atomic<size_t> used{0};
  std::atomic<int> alloc_calls{0}, allocs{0}, frees{0}, events_recorded{0}, event_waits{0},
      events_destroyed{0};

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::vector<FakeEvent*> events_;
  std::map<void*, size_t> sizes_;
};

// Stream identities: any distinct addresses.
const char kStreams[2] = {};
const AllocatorStream kA = &kStreams[0];
const AllocatorStream kB = &kStreams[1];

TEST(CachingAllocatorTest, RoundsSmallSizesTo512BytesAndLargeTo2MiB) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(kMiB), kMiB);
  EXPECT_EQ(CachingAllocator::round_size(kMiB + 1), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::round_size(5 * kMiB), 6 * kMiB);
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  allocator.allocate(0, 1000, kA);
  EXPECT_EQ(allocator.stats(0).bytes_in_use, 1024u);
  EXPECT_EQ(device.used, 1024u);
}

TEST(CachingAllocatorTest, AFreedBlockServesTheNextRequestWithoutARawAllocation) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* first = allocator.allocate(0, 1000, kA);
  EXPECT_TRUE(allocator.deallocate(first));
  EXPECT_EQ(allocator.allocate(0, 900, kA), first);  // both round to 1024
  const CachingAllocatorStats stats = allocator.stats(0);
  EXPECT_EQ(stats.raw_allocs, 1u);
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_EQ(device.allocs, 1);
}

TEST(CachingAllocatorTest, TakesTheSmallestCachedBlockThatFits) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  std::vector<void*> blocks;
  for (size_t size : {16 * kMiB, 8 * kMiB, 10 * kMiB}) blocks.push_back(allocator.allocate(0, size, kA));
  for (void* b : blocks) allocator.deallocate(b);
  EXPECT_EQ(allocator.allocate(0, 7 * kMiB + 5, kA), blocks[1]);  // 8 MiB, not 10 or 16
  EXPECT_EQ(allocator.allocate(0, 9 * kMiB, kA), blocks[2]);
  EXPECT_EQ(device.allocs, 3);
}

TEST(CachingAllocatorTest, ASmallRequestDoesNotTakeAMuchLargerBlock) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* big = allocator.allocate(0, 64 * kMiB, kA);
  allocator.deallocate(big);
  EXPECT_NE(allocator.allocate(0, 4096, kA), big);
  EXPECT_NE(allocator.allocate(0, 40 * kMiB, kA), big);  // 64 MiB would waste over a quarter
  EXPECT_EQ(allocator.allocate(0, 60 * kMiB, kA), big);
  EXPECT_EQ(device.allocs, 3);
}

// A training step allocates and frees the same sizes in the same order each time: after
// the first step every request is served from the cache.
TEST(CachingAllocatorTest, TheSteadyStateMakesNoRawAllocation) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  const std::vector<size_t> sizes = {3 * kMiB, 4096, 100, 3 * kMiB, 25 * kMiB, 7000, 4096};
  int allocs_after_first_step = 0;
  for (int step = 0; step < 5; ++step) {
    std::vector<void*> activations;
    for (size_t size : sizes) activations.push_back(allocator.allocate(0, size, kA));
    void* workspace = allocator.allocate(0, 12 * kMiB, kA);
    allocator.deallocate(workspace);
    while (!activations.empty()) {  // backward frees them in reverse
      allocator.deallocate(activations.back());
      activations.pop_back();
    }
    if (step == 0) allocs_after_first_step = device.allocs;
  }
  EXPECT_EQ(device.allocs, allocs_after_first_step);
  EXPECT_EQ(allocator.stats(0).raw_allocs, static_cast<uint64_t>(sizes.size() + 1));
  EXPECT_EQ(allocator.stats(0).bytes_in_use, 0u);
}

TEST(CachingAllocatorTest, OutOfMemoryReleasesTheCacheAndRetriesOnce) {
  FakeDevice device(8 * kMiB);
  CachingAllocator allocator(device.raw(), "fake");
  allocator.deallocate(allocator.allocate(0, 6 * kMiB, kA));
  EXPECT_EQ(allocator.stats(0).bytes_cached, 6 * kMiB);
  void* ptr = allocator.allocate(0, 4 * kMiB, kA);  // 6 + 4 > 8: only after the release
  EXPECT_NE(ptr, nullptr);
  const CachingAllocatorStats stats = allocator.stats(0);
  EXPECT_EQ(stats.cache_releases, 1u);
  EXPECT_EQ(stats.raw_frees, 1u);
  EXPECT_EQ(stats.bytes_cached, 0u);
  EXPECT_EQ(stats.bytes_in_use, 4 * kMiB);
  EXPECT_EQ(device.alloc_calls, 3);  // 6 MiB, 4 MiB refused, 4 MiB again
}

TEST(CachingAllocatorTest, OutOfMemoryWithNothingToReleaseIsAnErrorNamingTheDevice) {
  FakeDevice device(8 * kMiB);
  CachingAllocator allocator(device.raw(), "fake");
  allocator.allocate(1, 6 * kMiB, kA);
  try {
    allocator.allocate(1, 4 * kMiB, kA);
    FAIL() << "expected an out-of-memory Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("fake:1 is out of memory"), std::string::npos) << message;
    EXPECT_NE(message.find("asked for 4194304 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("6291456 bytes in use in 1 blocks"), std::string::npos) << message;
  }
  EXPECT_EQ(device.alloc_calls, 2);  // nothing cached: no pointless retry
  EXPECT_EQ(allocator.stats(1).cache_releases, 0u);
}

TEST(CachingAllocatorTest, BlocksAreReusedOnlyOnTheStreamTheyWereAllocatedFor) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* on_a = allocator.allocate(0, 4096, kA);
  allocator.deallocate(on_a);
  EXPECT_NE(allocator.allocate(0, 4096, kB), on_a);  // A's kernels may still use it
  EXPECT_EQ(allocator.allocate(0, 4096, kA), on_a);
  EXPECT_EQ(device.allocs, 2);
}

TEST(CachingAllocatorTest, ABlockUsedOnAnotherStreamWaitsForThatStreamBeforeReuse) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* grad = allocator.allocate(0, 4096, kA);
  allocator.record_stream(static_cast<char*>(grad) + 100, kB);  // an address inside it
  allocator.record_stream(grad, kB);                            // twice is once
  allocator.record_stream(grad, kA);                            // its own stream: nothing
  allocator.deallocate(grad);
  EXPECT_EQ(device.events_recorded, 1);
  EXPECT_EQ(allocator.stats(0).bytes_cached, 4096u);
  void* other = allocator.allocate(0, 4096, kA);
  EXPECT_NE(other, grad);  // B may still read it
  device.finish(kB);
  EXPECT_EQ(allocator.allocate(0, 4096, kA), grad);
  EXPECT_EQ(device.events_destroyed, 1);
  // Its record is cleared: freed again, it is reusable at once.
  allocator.deallocate(grad);
  EXPECT_EQ(allocator.allocate(0, 4096, kA), grad);
  EXPECT_EQ(device.events_recorded, 1);
}

TEST(CachingAllocatorTest, ReleaseCachedWaitsForOtherStreamsThenFrees) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* shared = allocator.allocate(0, 4096, kA);
  void* plain = allocator.allocate(0, 8192, kA);
  void* kept = allocator.allocate(0, 512, kA);
  allocator.record_stream(shared, kB);
  allocator.deallocate(shared);
  allocator.deallocate(plain);
  allocator.release_cached(0);
  EXPECT_EQ(device.event_waits, 1);
  EXPECT_EQ(device.frees, 2);
  const CachingAllocatorStats stats = allocator.stats(0);
  EXPECT_EQ(stats.bytes_cached, 0u);
  EXPECT_EQ(stats.bytes_in_use, 512u);
  EXPECT_EQ(stats.raw_frees, 2u);
  allocator.deallocate(kept);
}

TEST(CachingAllocatorTest, EachDeviceHasItsOwnPoolsAndStatistics) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* on0 = allocator.allocate(0, 4096, kA);
  allocator.deallocate(on0);
  void* on1 = allocator.allocate(1, 4096, kA);
  EXPECT_NE(on1, on0);
  allocator.deallocate(on1);
  allocator.release_cached(1);
  EXPECT_EQ(allocator.stats(0).bytes_cached, 4096u);
  EXPECT_EQ(allocator.stats(1).bytes_cached, 0u);
  EXPECT_EQ(allocator.stats(1).raw_frees, 1u);
  EXPECT_EQ(allocator.allocate(0, 4096, kA), on0);
  EXPECT_EQ(allocator.stats(7).raw_allocs, 0u);  // a device never used: all zero
}

TEST(CachingAllocatorTest, StatisticsFollowUseAndPeak) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  void* a = allocator.allocate(0, 3 * kMiB, kA);
  void* b = allocator.allocate(0, 1000, kA);
  CachingAllocatorStats stats = allocator.stats(0);
  EXPECT_EQ(stats.bytes_in_use, 4 * kMiB + 1024);
  EXPECT_EQ(stats.blocks_in_use, 2u);
  allocator.deallocate(a);
  stats = allocator.stats(0);
  EXPECT_EQ(stats.bytes_in_use, 1024u);
  EXPECT_EQ(stats.bytes_cached, 4 * kMiB);
  EXPECT_EQ(stats.peak_bytes_in_use, 4 * kMiB + 1024);
  EXPECT_EQ(stats.blocks_in_use, 1u);
  allocator.deallocate(b);
  allocator.release_cached();
  stats = allocator.stats(0);
  EXPECT_EQ(stats.bytes_cached, 0u);
  EXPECT_EQ(stats.raw_frees, 2u);
  EXPECT_EQ(device.used, 0u);
}

TEST(CachingAllocatorTest, UnknownPointersAndDoubleFreesAreRefused) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  int local = 0;
  EXPECT_FALSE(allocator.deallocate(&local));
  void* ptr = allocator.allocate(0, 100, kA);
  EXPECT_FALSE(allocator.deallocate(static_cast<char*>(ptr) + 4));  // not the base
  EXPECT_TRUE(allocator.deallocate(ptr));
  EXPECT_FALSE(allocator.deallocate(ptr));
  EXPECT_THROW(allocator.record_stream(ptr, kB), Error);  // freed
  EXPECT_THROW(allocator.record_stream(&local, kB), Error);
}

TEST(CachingAllocatorTest, RecordStreamWithoutEventCallsIsAnError) {
  FakeDevice device;
  RawDeviceMemory raw = device.raw();
  raw.record_event = nullptr;
  CachingAllocator allocator(raw);
  void* ptr = allocator.allocate(0, 100, kA);
  EXPECT_THROW(allocator.record_stream(ptr, kB), Error);
  EXPECT_NO_THROW(allocator.record_stream(ptr, kA));
}

TEST(CachingAllocatorTest, DestructionReturnsTheCacheToTheDevice) {
  FakeDevice device;
  {
    CachingAllocator allocator(device.raw());
    allocator.deallocate(allocator.allocate(0, 100, kA));
    allocator.deallocate(allocator.allocate(1, 5 * kMiB, kB));
  }
  EXPECT_EQ(device.frees, 2);
}

// Threads allocating and freeing at once: every block handed out is distinct (each thread
// stamps its blocks and checks the stamp survives), and the books balance at the end.
TEST(CachingAllocatorTest, ConcurrentUseHandsOutDistinctBlocks) {
  FakeDevice device;
  CachingAllocator allocator(device.raw());
  std::atomic<int> corrupted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const AllocatorStream stream = t % 2 ? kA : kB;
      unsigned seed = 17u + static_cast<unsigned>(t);
      std::vector<std::pair<unsigned char*, size_t>> held;
      for (int i = 0; i < 2000; ++i) {
        seed = seed * 1103515245u + 12345u;
        if (held.size() < 8 && (seed >> 16) % 3 != 0) {
          const size_t size = 64 + (seed >> 8) % 20000;
          auto* p = static_cast<unsigned char*>(allocator.allocate(t % 2, size, stream));
          std::memset(p, t + 1, size);
          held.emplace_back(p, size);
        } else if (!held.empty()) {
          auto [p, size] = held.back();
          held.pop_back();
          for (size_t k = 0; k < size; k += 97) corrupted += p[k] != t + 1;
          allocator.deallocate(p);
        }
      }
      for (auto& [p, size] : held) allocator.deallocate(p);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(corrupted, 0);
  for (int d : {0, 1}) {
    const CachingAllocatorStats stats = allocator.stats(d);
    EXPECT_EQ(stats.bytes_in_use, 0u);
    EXPECT_EQ(stats.blocks_in_use, 0u);
    EXPECT_GT(stats.cache_hits, 0u);
  }
  allocator.release_cached();
  EXPECT_EQ(device.frees, device.allocs);
}

}  // namespace
}  // namespace residual
