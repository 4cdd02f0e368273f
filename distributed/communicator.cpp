#include "distributed/communicator.h"

#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/hash.h"

namespace residual {

const char* collective_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce: return "all-reduce";
    case CollectiveKind::kBroadcast: return "broadcast";
    case CollectiveKind::kAllGather: return "all-gather";
    case CollectiveKind::kBarrier: return "barrier";
  }
  return "?";
}

std::string CollectiveRecord::describe() const {
  char size[32];
  if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(size, sizeof(size), "%.1f MB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(size, sizeof(size), "%.1f KB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(size, sizeof(size), "%lld B", static_cast<long long>(bytes));
  }
  char line[128];
  std::snprintf(line, sizeof(line), "#%llu %s %s (%s)", static_cast<unsigned long long>(sequence),
                collective_name(kind), size, what);
  return line;
}

const CollectiveRecord& CollectiveLog::add(CollectiveKind kind, int64_t bytes, const char* what) {
  CollectiveRecord& r = ring_[next_ % kHistory];
  r.sequence = ++next_;
  r.kind = kind;
  r.bytes = bytes;
  std::snprintf(r.what, sizeof(r.what), "%s", what);
  // Kind, size and order enter the fingerprint; the description does not (it may carry
  // rank-local detail).
  fingerprint_ = splitmix64(fingerprint_ ^ splitmix64(r.sequence * 8 + static_cast<uint64_t>(kind)) ^
                            static_cast<uint64_t>(bytes));
  return r;
}

uint32_t CollectiveLog::take_fingerprint() {
  const uint32_t f = static_cast<uint32_t>(fingerprint_ & 0xFFFFF);
  fingerprint_ = 0;
  return f;
}

std::string CollectiveLog::history() const {
  std::ostringstream s;
  const uint64_t first = next_ > kHistory ? next_ - kHistory : 0;
  for (uint64_t i = first; i < next_; ++i) {
    if (i > first) s << "; ";
    s << ring_[i % kHistory].describe();
  }
  return next_ == 0 ? std::string("none") : s.str();
}

namespace {

class DoneWork : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::unique_ptr<Work> all_reduce_async(float*, int64_t n, const char* what) override {
    log_.add(CollectiveKind::kAllReduce, n * 4, what);
    return std::make_unique<DoneWork>();
  }
  void all_reduce(double*, int64_t n, const char* what) override {
    log_.add(CollectiveKind::kAllReduce, n * 8, what);
  }
  void all_reduce_max(int64_t*, int64_t n, const char* what) override {
    log_.add(CollectiveKind::kAllReduce, n * 8, what);
  }
  void broadcast(void*, int64_t bytes, int, const char* what) override {
    log_.add(CollectiveKind::kBroadcast, bytes, what);
  }
  void all_gather(const void* in, int64_t bytes, void* out, const char* what) override {
    log_.add(CollectiveKind::kAllGather, bytes, what);
    if (bytes > 0 && in != out) std::memcpy(out, in, static_cast<size_t>(bytes));
  }
  void barrier(const char* what) override { log_.add(CollectiveKind::kBarrier, 0, what); }
  std::unique_ptr<Communicator> split(int, const char*) override {
    auto sub = std::make_unique<LocalCommunicator>();
    sub->follow(*this);
    return sub;
  }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace residual
