#include "core/caching_allocator.h"

#include <algorithm>
#include <cstddef>
#include <set>

#include "core/error.h"

namespace residual {
namespace {
constexpr size_t kSmallRound = 512;           // every block is a multiple of this
constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB: the small sizes end here
constexpr size_t kLargeRound = size_t{2} << 20;  // 2 MiB: large blocks are multiples

size_t round_up(size_t bytes, size_t multiple) {
  return (bytes + multiple - 1) / multiple * multiple;
}
}  // namespace

CachingAllocator::CachingAllocator(RawDeviceMemory raw, std::string name)
    : raw_(std::move(raw)), name_(std::move(name)) {
  RESIDUAL_CHECK(raw_.alloc && raw_.free, "CachingAllocator for ", name_,
                 " needs raw alloc and free calls");
}

CachingAllocator::~CachingAllocator() {
  try {
    release_cached();
  } catch (...) {
    // A device that fails while the process ends: its memory goes with the process.
  }
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes <= kSmallLimit) return round_up(std::max<size_t>(bytes, 1), kSmallRound);
  return round_up(bytes, kLargeRound);
}

CachingAllocatorStats& CachingAllocator::stats_of(int device) { return stats_[device]; }

CachingAllocatorStats CachingAllocator::stats(int device) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = stats_.find(device);
  return it == stats_.end() ? CachingAllocatorStats{} : it->second;
}

std::map<char*, CachingAllocator::Block>::iterator CachingAllocator::find_block(void* ptr) {
  char* p = static_cast<char*>(ptr);
  auto it = blocks_.upper_bound(p);
  if (it == blocks_.begin()) return blocks_.end();
  --it;
  return p < it->first + it->second.size ? it : blocks_.end();
}

char* CachingAllocator::take_from_pool(int device, AllocatorStream stream, size_t size) {
  const auto pool = ready_.find({device, stream});
  if (pool == ready_.end()) return nullptr;
  const auto best = pool->second.lower_bound(size);  // the smallest block that fits
  if (best == pool->second.end() || !fits(best->first, size)) return nullptr;
  char* base = best->second;
  pool->second.erase(best);
  return base;
}

// Moves the freed blocks of `device` whose other-stream work has finished to the cache of
// their own stream. Polled on allocation: nothing else learns when a stream is done.
void CachingAllocator::collect_finished(int device) {
  // An index loop, not remove_if: event_done may throw, and waiting_ must stay whole.
  for (size_t i = 0; i < waiting_.size();) {
    char* base = waiting_[i];
    Block& block = blocks_.at(base);
    const bool done = block.device == device &&
                      std::all_of(block.events.begin(), block.events.end(),
                                  [&](void* event) { return raw_.event_done(event); });
    if (!done) {
      ++i;
      continue;
    }
    for (void* event : block.events) raw_.event_destroy(event);
    block.events.clear();
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    ready_[{block.device, block.stream}].emplace(block.size, base);
  }
}

void* CachingAllocator::allocate(int device, size_t bytes, AllocatorStream stream) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  CachingAllocatorStats& stats = stats_of(device);
  collect_finished(device);
  char* base = take_from_pool(device, stream, size);
  if (base) {
    ++stats.cache_hits;
    stats.bytes_cached -= blocks_.at(base).size;
  } else {
    base = static_cast<char*>(raw_.alloc(device, size));
    if (!base && stats.bytes_cached > 0) {
      // Out of memory with blocks cached: they may be what is missing (or fragment it).
      ++stats.cache_releases;
      release_locked(device);
      base = static_cast<char*>(raw_.alloc(device, size));
    }
    if (!base) {
      fail(name_, ":", device, " is out of memory: asked for ", bytes, " bytes (", size,
           " rounded) with ", stats.bytes_in_use, " bytes in use in ", stats.blocks_in_use,
           " blocks and no cached block left to release");
    }
    ++stats.raw_allocs;
    Block block;
    block.device = device;
    block.stream = stream;
    block.size = size;
    blocks_[base] = std::move(block);
  }
  Block& block = blocks_.at(base);
  block.in_use = true;
  stats.bytes_in_use += block.size;
  stats.peak_bytes_in_use = std::max(stats.peak_bytes_in_use, stats.bytes_in_use);
  ++stats.blocks_in_use;
  return base;
}

bool CachingAllocator::deallocate(void* ptr) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = blocks_.find(static_cast<char*>(ptr));
  if (it == blocks_.end() || !it->second.in_use) return false;
  Block& block = it->second;
  CachingAllocatorStats& stats = stats_[block.device];
  block.in_use = false;
  stats.bytes_in_use -= block.size;
  --stats.blocks_in_use;
  try {
    if (block.used_on.empty()) {
      ready_[{block.device, block.stream}].emplace(block.size, it->first);
    } else {
      for (AllocatorStream other : block.used_on) {
        block.events.push_back(raw_.record_event(block.device, other));
      }
      block.used_on.clear();
      waiting_.push_back(it->first);
    }
    stats.bytes_cached += block.size;
  } catch (...) {
    // Without an event there is no telling when the other stream is done with the
    // block: it is never reused nor freed (a leak, rather than a race on its contents).
    for (void* event : block.events) {
      try {
        raw_.event_destroy(event);
      } catch (...) {
      }
    }
    block.events.clear();
  }
  return true;
}

void CachingAllocator::record_stream(void* ptr, AllocatorStream stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = find_block(ptr);
  RESIDUAL_CHECK(it != blocks_.end() && it->second.in_use, "record_stream: ", ptr,
                 " is not in a block that ", name_, " memory has handed out");
  Block& block = it->second;
  if (stream == block.stream) return;
  RESIDUAL_CHECK(raw_.record_event && raw_.event_done && raw_.event_wait && raw_.event_destroy,
                 "record_stream: this ", name_, " allocator was made without event calls");
  if (std::find(block.used_on.begin(), block.used_on.end(), stream) == block.used_on.end()) {
    block.used_on.push_back(stream);
  }
}

void CachingAllocator::release_locked(int device) {
  CachingAllocatorStats& stats = stats_of(device);
  auto give_back = [&](char* base) {
    const size_t size = blocks_.at(base).size;
    raw_.free(device, base);  // cudaFree waits for queued work that may still use it
    blocks_.erase(base);
    ++stats.raw_frees;
    stats.bytes_cached -= size;
  };
  for (auto pool = ready_.begin(); pool != ready_.end();) {
    if (pool->first.first != device) {
      ++pool;
      continue;
    }
    for (const auto& entry : pool->second) give_back(entry.second);
    pool = ready_.erase(pool);
  }
  for (size_t i = 0; i < waiting_.size();) {
    char* base = waiting_[i];
    Block& block = blocks_.at(base);
    if (block.device != device) {
      ++i;
      continue;
    }
    for (void* event : block.events) raw_.event_wait(event);
    for (void* event : block.events) raw_.event_destroy(event);
    block.events.clear();
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    give_back(base);
  }
}

void CachingAllocator::release_cached(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  release_locked(device);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::set<int> devices;
  for (const auto& entry : blocks_) devices.insert(entry.second.device);
  for (int device : devices) release_locked(device);
}

}  // namespace residual
