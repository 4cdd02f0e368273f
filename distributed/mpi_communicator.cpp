#include "distributed/mpi_communicator.h"

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "distributed/job.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

std::string mpi_error(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

// One collective's completion, shared by the caller's Work and the communication thread.
struct OpState {
  std::atomic<bool> done{false};
  std::string error;  // written before `done` is set
};

// Every MPI call after MPI_Init runs here, in submission order, on one thread
// (MPI_THREAD_SERIALIZED). Blocking collectives use MPI's tuned algorithms (its
// non-blocking ones were up to 10x slower on shared memory here), and they progress
// while the compute thread runs backward: that is the overlap. The caller never blocks
// inside MPI, so its deadline always fires.
class CommThread {
 public:
  CommThread() : thread_([this] { loop(); }) {}
  ~CommThread() { stop(); }

  std::shared_ptr<OpState> submit(std::function<int()> op) {
    auto state = std::make_shared<OpState>();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({std::move(op), state});
    }
    wake_.notify_one();
    return state;
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

 private:
  struct Item {
    std::function<int()> op;
    std::shared_ptr<OpState> state;
  };
  void loop() {
    for (;;) {
      Item item;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      const int rc = item.op();
      if (rc != MPI_SUCCESS) item.state->error = mpi_error(rc);
      item.state->done.store(true, std::memory_order_release);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

std::unique_ptr<CommThread> g_comm_thread;
bool g_initialised = false;
int g_world_rank = 0;

class MpiCommunicator;
void wait_for(OpState& state, const MpiCommunicator& comm, const CollectiveRecord& record);

class MpiWork : public Work {
 public:
  MpiWork(const MpiCommunicator& comm, const CollectiveRecord& record, std::shared_ptr<OpState> state)
      : comm_(comm), record_(record), state_(std::move(state)) {}
  bool test() override { return state_->done.load(std::memory_order_acquire); }
  void wait() override { wait_for(*state_, comm_, record_); }

 private:
  const MpiCommunicator& comm_;
  CollectiveRecord record_;
  std::shared_ptr<OpState> state_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::unique_ptr<Work> all_reduce_async(float* data, int64_t n, const char* what) override {
    const int count = checked_count(n);
    MPI_Comm comm = comm_;
    return start(CollectiveKind::kAllReduce, n * 4, what, [=] {
      return MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_FLOAT, MPI_SUM, comm);
    });
  }
  void all_reduce(double* data, int64_t n, const char* what) override {
    const int count = checked_count(n);
    MPI_Comm comm = comm_;
    start(CollectiveKind::kAllReduce, n * 8, what, [=] {
      return MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_DOUBLE, MPI_SUM, comm);
    })->wait();
  }
  void all_reduce_max(int64_t* data, int64_t n, const char* what) override {
    const int count = checked_count(n);
    MPI_Comm comm = comm_;
    start(CollectiveKind::kAllReduce, n * 8, what, [=] {
      return MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_INT64_T, MPI_MAX, comm);
    })->wait();
  }
  void broadcast(void* data, int64_t bytes, int root, const char* what) override {
    const int count = checked_count(bytes);
    MPI_Comm comm = comm_;
    start(CollectiveKind::kBroadcast, bytes, what, [=] {
      return MPI_Bcast(data, count, MPI_BYTE, root, comm);
    })->wait();
  }
  void all_gather(const void* in, int64_t bytes, void* out, const char* what) override {
    const int count = checked_count(bytes);
    MPI_Comm comm = comm_;
    start(CollectiveKind::kAllGather, bytes, what, [=] {
      return MPI_Allgather(in, count, MPI_BYTE, out, count, MPI_BYTE, comm);
    })->wait();
  }
  void barrier(const char* what) override {
    MPI_Comm comm = comm_;
    start(CollectiveKind::kBarrier, 0, what, [=] { return MPI_Barrier(comm); })->wait();
  }
  std::unique_ptr<Communicator> split(int color, const char* what) override {
    MPI_Comm group = MPI_COMM_NULL;
    int rank = 0, size = 0;
    MPI_Comm comm = comm_;
    const int key = rank_;
    start(CollectiveKind::kBarrier, 0, what, [=, &group, &rank, &size] {
      int rc = MPI_Comm_split(comm, color, key, &group);
      if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(group, MPI_ERRORS_RETURN);
      if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(group, &rank);
      if (rc == MPI_SUCCESS) rc = MPI_Comm_size(group, &size);
      return rc;
    })->wait();
    auto sub = std::make_unique<MpiCommunicator>(group, rank, size);
    sub->follow(*this);
    return sub;
  }

 private:
  static int checked_count(int64_t n) {
    RESIDUAL_CHECK(n >= 0 && n <= (int64_t{1} << 31) - 1, "a collective of ", n,
                   " elements is beyond MPI's int count: use smaller buckets");
    return static_cast<int>(n);
  }
  std::unique_ptr<MpiWork> start(CollectiveKind kind, int64_t bytes, const char* what,
                                 std::function<int()> op) {
    const CollectiveRecord& record = log_.add(kind, bytes, what);
    return std::make_unique<MpiWork>(*this, record, g_comm_thread->submit(std::move(op)));
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

void wait_for(OpState& state, const MpiCommunicator& comm, const CollectiveRecord& record) {
  const auto start = Clock::now();
  const auto deadline = start + comm.timeout();
  // Spin briefly (small collectives, such as synchronized batch norm's, complete in
  // microseconds), yielding the core; then check every 50 us until the deadline.
  const auto spin_until = start + std::chrono::milliseconds(2);
  for (int64_t polls = 1; !state.done.load(std::memory_order_acquire); ++polls) {
    if (polls % 64 != 0) continue;
    const auto now = Clock::now();
    if (now < spin_until) {
      std::this_thread::yield();
      continue;
    }
    if (now > deadline) {
      const double seconds = std::chrono::duration<double>(comm.timeout()).count();
      char head[512];
      std::snprintf(head, sizeof(head),
                    "rank %d: collective %s did not complete within %.0f s (--comm-timeout) at %s: "
                    "another rank is stopped, dead or unreachable; this rank's last collectives: ",
                    g_world_rank, record.describe().c_str(), seconds, comm.phase().c_str());
      end_job(head + const_cast<MpiCommunicator&>(comm).log().history(), 1);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  RESIDUAL_CHECK(state.error.empty(), "MPI failed in collective ", record.describe(), ": ", state.error);
}

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (std::getenv(v)) return true;
  }
  return false;
}

std::unique_ptr<Communicator> make_mpi_communicator() {
  RESIDUAL_CHECK(!g_initialised, "MPI is initialised once per process");
  // Open MPI's blocking collectives poll; yielding while they wait leaves the core to
  // the compute thread of the same rank. Read at MPI_Init, so set before it.
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
  int provided = 0;
  RESIDUAL_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) == MPI_SUCCESS,
                 "MPI_Init_thread failed");
  g_initialised = true;
  RESIDUAL_CHECK(provided >= MPI_THREAD_SERIALIZED,
                 "this MPI library does not support MPI_THREAD_SERIALIZED, which the "
                 "communication thread needs");
  MPI_Comm world = MPI_COMM_NULL;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &world);
  RESIDUAL_CHECK(rc == MPI_SUCCESS, "MPI_Comm_dup failed: ", mpi_error(rc));
  MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  g_world_rank = rank;
  // From here on only the communication thread calls MPI, until finalize_mpi().
  g_comm_thread = std::make_unique<CommThread>();
  return std::make_unique<MpiCommunicator>(world, rank, size);
}

void finalize_mpi() {
  if (!g_initialised) return;
  if (g_comm_thread) g_comm_thread->stop();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace residual
