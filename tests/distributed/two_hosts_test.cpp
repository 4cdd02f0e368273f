// A data-parallel job across two "hosts" made on this machine: two network namespaces
// joined by a veth pair (two_hosts.sh), Open MPI's TCP transport on that pair only, and an
// rsh agent that enters a namespace where ssh would log in to a host (netns_rsh_agent.sh).
// mpirun runs in host A (10.250.0.1) and starts rank 0 there itself; rank 1 runs in host B
// (10.250.0.2) under an orted that the agent started. Skipped, with the reason, where
// network namespaces cannot be made (not root, no `ip`, a container without the rights).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "tests/distributed/mpi_job.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string script(const std::string& name) { return (source_dir() / "tests/distributed" / name).string(); }

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// `two_hosts.sh down ID`, prepared in advance so that a signal handler can run it.
std::vector<std::string> g_down_command;
std::vector<char*> g_down_argv;

extern "C" void remove_hosts_and_die(int signal) {
  // fork, execv and waitpid are async-signal-safe.
  const pid_t pid = fork();
  if (pid == 0) {
    execv(g_down_argv[0], g_down_argv.data());
    _exit(127);
  }
  if (pid > 0) waitpid(pid, nullptr, 0);
  ::signal(signal, SIG_DFL);
  raise(signal);
}

class TwoHosts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    id_ = std::to_string(getpid());
    skip_reason_.clear();
    setup_failure_.clear();
    const JobResult r = run_job({"/bin/sh", script("two_hosts.sh"), "up", id_}, 60);
    if (r.exit_code == 77) {
      skip_reason_ = r.err;
      return;
    }
    if (r.exit_code != 0) {
      setup_failure_ = "two_hosts.sh up failed (" + describe(r) + "): " + r.err;
      return;
    }
    up_ = true;
    // The namespaces go with this process: at the end of the suite, on SIGINT, SIGTERM
    // or SIGHUP; after a SIGKILL, the next run's `up` removes them.
    g_down_command = {"/bin/sh", script("two_hosts.sh"), "down", id_};
    g_down_argv.clear();
    for (std::string& a : g_down_command) g_down_argv.push_back(a.data());
    g_down_argv.push_back(nullptr);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::signal(s, remove_hosts_and_die);
    ::setenv("RESIDUAL_NETNS_HOSTS", ("10.250.0.1=" + ns_a() + " 10.250.0.2=" + ns_b()).c_str(), 1);
    files_ = std::make_unique<TempDir>();
    write_text(hostfile(), "10.250.0.1 slots=1\n10.250.0.2 slots=1\n");
  }
  static void TearDownTestSuite() {
    if (!up_) return;
    run_job(g_down_command, 60);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::signal(s, SIG_DFL);
    up_ = false;
    files_.reset();
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_failure_.empty()) << setup_failure_;
  }

  static std::string ns_a() { return "residual-" + id_ + "-a"; }
  static std::string ns_b() { return "residual-" + id_ + "-b"; }
  static std::string veth_b() { return "rsd" + id_ + "b"; }
  static std::string hostfile() { return (files_->path() / "hosts").string(); }

  // `mpirun ... residual train ARGS --no-progress` from host A, one rank per host, each
  // rank's output also in OUTPUT/1/rank.N/{stdout,stderr} (written on the rank's host:
  // rank 1's never reaches mpirun once the link is cut).
  static std::vector<std::string> two_host_train(const std::vector<std::string>& args, const fs::path& output) {
    std::vector<std::string> command = {
        "ip", "netns", "exec", ns_a(), "mpirun", "--allow-run-as-root", "--hostfile", hostfile(), "-np", "2",
        // Both "hosts" share this machine's cores: binding would put both ranks on core 0.
        "--bind-to", "none", "--display-map", "--output-filename", output.string(),
        "--mca", "plm_rsh_agent", script("netns_rsh_agent.sh"), "--mca", "btl", "self,tcp",
        "--mca", "btl_tcp_if_include", "10.250.0.0/24", "--mca", "oob_tcp_if_include", "10.250.0.0/24",
        cli_path(), "train"};
    command.insert(command.end(), args.begin(), args.end());
    command.push_back("--no-progress");
    return command;
  }

  // The pids of every process still in one of the namespaces (mpirun, orted, ranks).
  static std::string processes_in_namespaces() {
    std::string pids;
    for (const std::string& ns : {ns_a(), ns_b()}) pids += run_job({"ip", "netns", "pids", ns}, 30).out;
    return pids;
  }

  static std::string id_, skip_reason_, setup_failure_;
  static bool up_;
  static std::unique_ptr<TempDir> files_;
};

std::string TwoHosts::id_, TwoHosts::skip_reason_, TwoHosts::setup_failure_;
bool TwoHosts::up_ = false;
std::unique_ptr<TempDir> TwoHosts::files_;

// ResNet-20 on 12x12 synthetic images, global batch 32 (16 + 16), a checkpoint after
// every step, kept.
std::vector<std::string> short_run(const fs::path& dir, const std::string& epochs = "1") {
  return {"--model", "resnet20", "--data", "synthetic:1x12x12:4", "--batch-size", "32", "--epochs", epochs,
          "--seed", "7", "--threads", "1", "--checkpoint-dir", dir.string(), "--checkpoint-every-steps", "1",
          "--keep-last", "100"};
}

// Over TCP between two hosts the job trains exactly what it trains over shared memory on
// one host: every step's checkpoint is bit-identical. (With two ranks every element of an
// all-reduce is a + b, whatever the transport's algorithm, and a + b = b + a in IEEE
// arithmetic; the synchronised statistics and the drift check run the same way.)
TEST_F(TwoHosts, TrainingAcrossTwoHostsMatchesOneHostBitForBit) {
  TempDir two, one, output;
  const JobResult r = run_job(two_host_train(short_run(two.path()), output.path()), 120);
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  ASSERT_EQ(r.exit_code, 0) << describe(r) << "\n" << r.out << r.err;
  // mpirun placed rank 1 on host B, which only the agent reaches.
  const size_t host_b = r.out.find("Data for node: 10.250.0.2");
  ASSERT_NE(host_b, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Process rank: 1", host_b), r.out.find("Process rank:", host_b)) << r.out;

  const JobResult o = run_mpi_train(2, short_run(one.path()));
  ASSERT_FALSE(o.timed_out) << o.err;
  ASSERT_EQ(o.exit_code, 0) << describe(o) << "\n" << o.out << o.err;

  const std::vector<CheckpointName> two_hosts = checkpoints_in(two.path()), one_host = checkpoints_in(one.path());
  ASSERT_EQ(two_hosts.size(), static_cast<size_t>(kStepsPerEpoch));
  ASSERT_EQ(one_host.size(), two_hosts.size());
  for (size_t i = 0; i < two_hosts.size(); ++i) {
    ASSERT_EQ(two_hosts[i].file, one_host[i].file);
    SCOPED_TRACE(two_hosts[i].file);
    expect_same_state((two.path() / two_hosts[i].file).string(), (one.path() / one_host[i].file).string());
  }
}

// The link cut in the middle of training: the ranks on both sides wait on a collective
// that cannot complete, and each ends itself at --comm-timeout naming the step and the
// collective. mpirun and host B's orted then end when TCP gives up on the control
// messages between them (two_hosts.sh sets tcp_retries2 = 5 in the namespaces: about
// 13 s instead of 15 minutes; see docs/distributed.md).
TEST_F(TwoHosts, ACutLinkEndsBothSidesAtTheCollectiveDeadline) {
  TempDir dir, output, capture;
  std::vector<std::string> args = short_run(dir.path(), "200");  // always ended early
  args.insert(args.end(), {"--comm-timeout", "5"});
  const Job job = start_job(two_host_train(args, output.path()), capture.path().string());

  const auto start = Clock::now();
  while (!(fs::exists(dir / "latest") && residual_processes_with(dir.path().string()).size() == 2)) {
    if (seconds_since(start) > 60) {
      const JobResult r = wait_job(job, 0);
      FAIL() << "the job did not start training within 60 s: " << r.out << r.err;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string marker = dir.path().string();
  const pid_t rank_pid[2] = {rank_process(marker, 0), rank_process(marker, 1)};
  ASSERT_GT(rank_pid[0], 0);
  ASSERT_GT(rank_pid[1], 0);
  const JobResult cut_link = run_job({"ip", "-n", ns_b(), "link", "set", veth_b(), "down"}, 30);
  const auto cut = Clock::now();
  ASSERT_EQ(cut_link.exit_code, 0) << cut_link.err;

  // Both ranks end by themselves, at their deadline.
  double rank_gone[2] = {-1, -1};
  while (seconds_since(cut) < 5 + 30 && (rank_gone[0] < 0 || rank_gone[1] < 0)) {
    const std::vector<pid_t> running = residual_processes_with(marker);
    for (int rank : {0, 1}) {
      if (rank_gone[rank] < 0 && std::find(running.begin(), running.end(), rank_pid[rank]) == running.end()) {
        rank_gone[rank] = seconds_since(cut);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const JobResult r = wait_job(job, std::max(0.0, 5 + 30 - seconds_since(cut)));
  const double job_gone = seconds_since(cut);
  std::cout << "link cut: rank 0 (host A) ended after " << rank_gone[0] << " s, rank 1 (host B) after "
            << rank_gone[1] << " s, mpirun after " << job_gone << " s\n";
  for (int rank : {0, 1}) {
    // The wait that times out may have begun a moment before the cut (a step takes ~30 ms).
    EXPECT_GE(rank_gone[rank], 4.5) << "rank " << rank
                                    << (rank_gone[rank] < 0 ? " still ran 35 s after the cut"
                                                            : " ended well before its deadline");
  }
  EXPECT_FALSE(r.timed_out) << "mpirun outlived the cut link by 35 s";
  EXPECT_NE(r.exit_code, 0);

  for (int rank : {0, 1}) {
    const std::string err = read_text(output.path() / "1" / ("rank." + std::to_string(rank)) / "stderr");
    EXPECT_NE(err.find("rank " + std::to_string(rank) + ": collective #"), std::string::npos) << err;
    EXPECT_NE(err.find("did not complete within 5 s (--comm-timeout) at step "), std::string::npos) << err;
  }
  // Rank 0's message also reached mpirun (same host); rank 1's could not.
  EXPECT_NE(r.err.find("rank 0: collective #"), std::string::npos) << r.err;

  EXPECT_TRUE(residual_processes_with(dir.path().string()).empty()) << "a rank outlived its job";
  // Nothing else either: host B's orted ended by itself.
  for (int i = 0; i < 100 && !processes_in_namespaces().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(processes_in_namespaces(), "") << "processes left in the namespaces";
}

}  // namespace
}  // namespace residual::cli_test
