#include "distributed/mpi_communicator.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "distributed/job.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

bool g_initialised = false;

void check_mpi(int rc, const char* call, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  fail(call, " failed during ", what, ": ", std::string(text, static_cast<size_t>(length)));
}

class MpiCommunicator;

// Polls a request until it completes or the deadline passes; then the job ends with the
// collective, the phase and this rank's recent history (a hang is never an option).
void wait_request(MPI_Request* request, const MpiCommunicator& comm, const CollectiveRecord& record);

class MpiWork : public Work {
 public:
  MpiWork(const MpiCommunicator& comm, const CollectiveRecord& record) : comm_(comm), record_(record) {}
  MPI_Request* request() { return &request_; }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    check_mpi(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE), "MPI_Test", record_.what);
    done_ = flag != 0;
    return done_;
  }
  void wait() override {
    if (!done_) wait_request(&request_, comm_, record_);
    done_ = true;
  }

 private:
  const MpiCommunicator& comm_;
  CollectiveRecord record_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::shared_ptr<std::string> phase) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    if (phase) phase_ = std::move(phase);
  }
  ~MpiCommunicator() override {
    // Freeing is collective in spirit; on an error path MPI may be past use, so only
    // free on the normal path (MPI_Finalize releases the rest).
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int world_rank() const {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
  }

  std::unique_ptr<Work> all_reduce_async(float* data, int64_t n, const char* what) override {
    auto work = std::make_unique<MpiWork>(*this, log_.add(CollectiveKind::kAllReduce, n * 4, what));
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, comm_, work->request()),
              "MPI_Iallreduce", what);
    return work;
  }
  void all_reduce(double* data, int64_t n, const char* what) override {
    MpiWork work(*this, log_.add(CollectiveKind::kAllReduce, n * 8, what));
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_DOUBLE, MPI_SUM, comm_, work.request()),
              "MPI_Iallreduce", what);
    work.wait();
  }
  void all_reduce_max(int64_t* data, int64_t n, const char* what) override {
    MpiWork work(*this, log_.add(CollectiveKind::kAllReduce, n * 8, what));
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_INT64_T, MPI_MAX, comm_, work.request()),
              "MPI_Iallreduce", what);
    work.wait();
  }
  void broadcast(void* data, int64_t bytes, int root, const char* what) override {
    MpiWork work(*this, log_.add(CollectiveKind::kBroadcast, bytes, what));
    check_mpi(MPI_Ibcast(data, count(bytes), MPI_BYTE, root, comm_, work.request()), "MPI_Ibcast", what);
    work.wait();
  }
  void all_gather(const void* in, int64_t bytes, void* out, const char* what) override {
    MpiWork work(*this, log_.add(CollectiveKind::kAllGather, bytes, what));
    check_mpi(MPI_Iallgather(in, count(bytes), MPI_BYTE, out, count(bytes), MPI_BYTE, comm_,
                             work.request()),
              "MPI_Iallgather", what);
    work.wait();
  }
  void barrier(const char* what) override {
    MpiWork work(*this, log_.add(CollectiveKind::kBarrier, 0, what));
    check_mpi(MPI_Ibarrier(comm_, work.request()), "MPI_Ibarrier", what);
    work.wait();
  }
  std::unique_ptr<Communicator> split(int color, const char* what) override {
    log_.add(CollectiveKind::kBarrier, 0, what);
    MPI_Comm group = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split(comm_, color, rank_, &group), "MPI_Comm_split", what);
    auto sub = std::make_unique<MpiCommunicator>(group, phase_);
    sub->set_timeout(timeout_);
    return sub;
  }

 private:
  static int count(int64_t n) {
    RESIDUAL_CHECK(n >= 0 && n <= (int64_t{1} << 31) - 1, "a collective of ", n,
                   " elements is beyond MPI's int count: use smaller buckets");
    return static_cast<int>(n);
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

void wait_request(MPI_Request* request, const MpiCommunicator& comm, const CollectiveRecord& record) {
  const auto deadline = Clock::now() + comm.timeout();
  int spins = 0;
  for (;;) {
    int flag = 0;
    check_mpi(MPI_Test(request, &flag, MPI_STATUS_IGNORE), "MPI_Test", record.what);
    if (flag) return;
    if (++spins < 256) continue;
    // Past a short spin, yield the core: ranks and loader threads share few cores.
    if (Clock::now() > deadline) {
      const double seconds = std::chrono::duration<double>(comm.timeout()).count();
      char head[512];
      std::snprintf(head, sizeof(head),
                    "rank %d: collective %s did not complete within %.0f s (--comm-timeout) at %s: "
                    "another rank is stopped, dead or unreachable; this rank's last collectives: ",
                    comm.world_rank(), record.describe().c_str(), seconds, comm.phase().c_str());
      end_job(head + const_cast<MpiCommunicator&>(comm).log().history(), 1);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (std::getenv(v)) return true;
  }
  return false;
}

std::unique_ptr<Communicator> make_mpi_communicator() {
  if (!g_initialised) {
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    RESIDUAL_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed");
    g_initialised = true;
  }
  MPI_Comm world = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &world), "MPI_Comm_dup", "start-up");
  return std::make_unique<MpiCommunicator>(world, nullptr);
}

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_initialised && !finalized) MPI_Finalize();
}

}  // namespace residual
