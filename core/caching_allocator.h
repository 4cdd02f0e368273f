#pragma once
// A caching allocator for device memory: freed blocks stay cached and serve later
// requests of about the same size, so a training step that repeats the last step's
// allocations makes no raw allocation (cudaMalloc synchronises the device and costs
// milliseconds). The logic knows no device API: it gets raw alloc/free and event calls
// as callbacks, so the CUDA backend (ops/cuda/device_memory.cu) and a counting fake in
// tests/core/caching_allocator_test.cpp drive the same code.
//
// The same idea as PyTorch's CUDACachingAllocator, a fraction of its size: no block
// splitting, no size-class bins beyond the rounding below, one mutex.
//
// Streams. Work on one stream runs in order, so a block freed by the host while kernels
// queued on its stream still read it can be handed to the next request *for the same
// stream*: whatever that request queues runs after those kernels. Handing it to another
// stream could overlap them, so each block remembers the stream it was allocated for and
// is reused only there. A block that another stream also used (an all-reduce on the
// communication stream reading a gradient) is declared with record_stream(); when it is
// freed, an event is recorded on each such stream and the block becomes reusable only
// once those events have completed (polled on the next allocation of its device).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace residual {

// An opaque stream identity (a cudaStream_t on CUDA; anything distinct in tests).
using AllocatorStream = const void*;

// What the allocator needs from the device underneath. Every call is made with the
// allocator's mutex held, so none may call back into the allocator.
struct RawDeviceMemory {
  // Returns nullptr when the device is out of memory (the allocator then empties its
  // cache and tries once more); any other failure throws.
  std::function<void*(int device, size_t bytes)> alloc;
  std::function<void(int device, void* ptr)> free;  // must not throw
  // Events for blocks used on other streams (record_stream). Left empty, record_stream
  // is an Error. record_event returns a handle that event_done polls, event_wait blocks
  // the host on, and event_destroy releases.
  std::function<void*(int device, AllocatorStream stream)> record_event;
  std::function<bool(void* event)> event_done;
  std::function<void(void* event)> event_wait;
  std::function<void(void* event)> event_destroy;
};

struct CachingAllocatorStats {
  size_t bytes_in_use = 0;       // rounded sizes of the blocks handed out
  size_t peak_bytes_in_use = 0;
  size_t bytes_cached = 0;       // freed blocks kept (ready or waiting for a stream)
  size_t blocks_in_use = 0;
  uint64_t raw_allocs = 0;       // calls to RawDeviceMemory::alloc that succeeded
  uint64_t raw_frees = 0;
  uint64_t cache_hits = 0;       // requests served from the cache
  uint64_t cache_releases = 0;   // times an out-of-memory emptied the cache to retry
};

class CachingAllocator {
 public:
  // `name` prefixes the device index in messages ("cuda" -> "cuda:0").
  explicit CachingAllocator(RawDeviceMemory raw, std::string name = "device");
  // Returns the cached blocks to the device; blocks still in use are left alone (their
  // owners may outlive the allocator at exit).
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The size a request is served with: up to 1 MiB a multiple of 512 B, above it a
  // multiple of 2 MiB (few distinct large sizes, so freed ones fit the next request).
  static size_t round_size(size_t bytes);
  // Whether a cached block of `block_size` may serve a request rounded to `size`: the
  // smallest one that fits is taken (best fit), but only if it wastes at most a quarter
  // of the request, so a small tensor never pins down a huge block.
  static bool fits(size_t block_size, size_t size) {
    return block_size >= size && block_size - size <= size / 4;
  }

  // A block of at least `bytes` on `device`, for work queued on `stream`. Out of memory
  // after emptying the cache once is an Error naming the device and the sizes.
  void* allocate(int device, size_t bytes, AllocatorStream stream);
  // Returns the block to the cache of its stream. Never throws (it runs in destructors);
  // false for a pointer this allocator does not hold in use.
  bool deallocate(void* ptr) noexcept;
  // Declares that work on `stream` (besides the block's own) uses the block holding
  // `ptr` (any address inside it): its reuse then waits for that work.
  void record_stream(void* ptr, AllocatorStream stream);

  // Returns every cached block of `device` (or of all devices) to the device, first
  // waiting for the events of blocks still used by other streams (empty_cache).
  void release_cached(int device);
  void release_cached();

  CachingAllocatorStats stats(int device) const;

 private:
  struct Block {
    int device = 0;
    AllocatorStream stream = nullptr;
    size_t size = 0;
    bool in_use = false;
    std::vector<AllocatorStream> used_on;  // other streams (record_stream)
    std::vector<void*> events;             // freed, waiting for those streams
  };
  using PoolKey = std::pair<int, AllocatorStream>;
  using Pool = std::multimap<size_t, char*>;  // size -> base, for best fit

  std::map<char*, Block>::iterator find_block(void* ptr);
  char* take_from_pool(int device, AllocatorStream stream, size_t size);
  void collect_finished(int device);
  void release_locked(int device);
  CachingAllocatorStats& stats_of(int device);

  RawDeviceMemory raw_;
  std::string name_;
  mutable std::mutex mutex_;
  std::map<char*, Block> blocks_;       // every raw allocation held, by base address
  std::map<PoolKey, Pool> ready_;       // freed blocks, reusable on their stream
  std::vector<char*> waiting_;          // freed blocks whose events are pending
  std::map<int, CachingAllocatorStats> stats_;
};

}  // namespace residual
