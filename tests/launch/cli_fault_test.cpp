// Every file the CLI writes, under a full disk, write errors and a read-only directory:
// `train` (checkpoints, latest, best.h5, the lock, the metrics file), `predict -o` (CSV and
// HDF5), `plot -o` and `export-model -o`. Three ways of failing a write:
//   - the fault-injection shim (tests/io/fault_injection) LD_PRELOAD-ed into `residual`,
//     failing the Nth call of one kind for N = 1, 2, ... until a run no longer meets it;
//   - RLIMIT_FSIZE (SIGXFSZ ignored): writes past the limit fail with EFBIG;
//   - a small tmpfs (a real ENOSPC) and a read-only remount of it (a real EROFS), where
//     mounting is allowed (root with CAP_SYS_ADMIN); elsewhere those tests skip and say why.
// Every run must end either in success with exactly the files a fault-free run writes, or
// in exit status 1 with one "residual: error:" line naming the cause, no signal, no
// temporary file, and every named file complete (the previous version, or the new one).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "tests/launch/cli_runner.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

struct Fault {
  const char* name;
  const char* op;     // RESIDUAL_FAULT_OP
  const char* count;  // calls that fail from the Nth on ("0": all)
  const char* error;  // RESIDUAL_FAULT_ERRNO ("" for a lost write)
  const char* mode;   // fail | short | lie
  const char* cause;  // what the error line must say
};

void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

const std::vector<Fault> kFaults = {
    {"disk_full", "write", "0", "ENOSPC", "short", "No space left on device"},
    {"write_error", "write", "1", "EIO", "fail", "Input/output error"},
    {"fsync_error", "fsync", "1", "EIO", "fail", "Input/output error"},
    {"close_error", "close", "1", "ENOSPC", "fail", "No space left on device"},
    {"read_only_directory", "open", "0", "EROFS", "fail", "Read-only file system"},
    {"read_only_rename", "rename", "0", "EROFS", "fail", "Read-only file system"},
    {"lost_write", "write", "1", "", "lie", "read back"},
};

std::string tiny_bn_model() { return test_data("tiny-bn.json").string(); }

std::vector<std::string> train_command(const fs::path& ckpt, const fs::path& metrics,
                                       const std::string& epochs = "2") {
  return {"train",
          "--model",
          tiny_bn_model(),
          "--data",
          "synthetic:1x4x4:2",
          "--batch-size",
          "256",
          "--threads",
          "1",
          "--workers",
          "1",
          "--epochs",
          epochs,
          "--seed",
          "3",
          "--best-metric",
          "val_loss",
          "--checkpoint-dir",
          ckpt.string(),
          "--metrics-file",
          metrics.string(),
          "--no-progress"};
}

// The files of fault-free runs, made once for the whole program.
struct Reference {
  TempDir dir;
  fs::path ckpt = dir / "ckpt", metrics = dir / "m.csv";
  std::string predictions_csv, predictions_h5, plot, model_json;
  Reference() {
    const CliResult t = run_cli(train_command(ckpt, metrics));
    if (t.exit_code != 0) throw std::runtime_error("reference run failed: " + describe(t));
    for (const char* ext : {".csv", ".h5"}) {
      run_cli({"predict", "--checkpoint", ckpt.string(), "--threads", "1", "-o",
               dir / ("p" + std::string(ext))});
    }
    run_cli({"plot", "--metrics", metrics.string(), "-o", dir / "c.svg"});
    run_cli({"export-model", "--model", tiny_bn_model(), "-o", dir / "m.json"});
    predictions_csv = read_text(dir / "p.csv");
    predictions_h5 = read_text(dir / "p.h5");
    plot = read_text(dir / "c.svg");
    model_json = read_text(dir / "m.json");
  }
};

const Reference& reference() {
  static const Reference r;
  return r;
}

// Temporary files (".NAME.tmp") anywhere below `dir`.
std::vector<std::string> temp_files(const fs::path& dir) {
  std::vector<std::string> found;
  if (!fs::exists(dir)) return found;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() > 4 && n[0] == '.' && n.compare(n.size() - 4, 4, ".tmp") == 0) {
      found.push_back(e.path().string());
    }
  }
  return found;
}

// Exit status 1, no signal, and one "residual: error:" line that names `cause`.
void expect_error_line(const CliResult& r, const std::string& cause) {
  ASSERT_EQ(r.signal, 0) << describe(r);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << describe(r);
  EXPECT_EQ(lines[0].rfind("residual: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(cause), std::string::npos) << "'" << cause << "' not in: " << lines[0];
}

// A checkpoint directory and metrics file left by a run of train_command: with `complete`,
// exactly the reference's; otherwise a metrics file of whole reference rows, checkpoints
// identical to the reference's of the same name, `latest` naming one of them, a readable
// best.h5, and no temporary file.
void check_training_files(const fs::path& ckpt, const fs::path& metrics, bool complete) {
  const Reference& ref = reference();
  EXPECT_EQ(temp_files(ckpt.parent_path()), std::vector<std::string>{});
  const std::string ref_metrics = read_text(ref.metrics);
  if (complete) {
    EXPECT_EQ(read_text(metrics), ref_metrics);
    EXPECT_EQ(latest_name(ckpt), latest_name(ref.ckpt));
    EXPECT_EQ(checkpoints_in(ckpt).size(), checkpoints_in(ref.ckpt).size());
  }
  if (fs::exists(metrics)) {
    const std::string text = read_text(metrics);
    EXPECT_EQ(ref_metrics.compare(0, text.size(), text), 0) << "not a prefix of the reference:\n"
                                                            << text;
    EXPECT_TRUE(text.empty() || text.back() == '\n') << "a torn row:\n" << text;
  }
  if (!fs::exists(ckpt)) return;
  for (const CheckpointName& c : checkpoints_in(ckpt)) {
    SCOPED_TRACE(c.file);
    ASSERT_TRUE(fs::exists(ref.ckpt / c.file));
    expect_same_state((ckpt / c.file).string(), (ref.ckpt / c.file).string());
  }
  const std::string latest = latest_name(ckpt);
  if (!latest.empty()) {
    EXPECT_TRUE(fs::exists(ckpt / latest)) << "latest names " << latest;
  }
  if (fs::exists(ckpt / "best.h5")) {
    EXPECT_NO_THROW(read_checkpoint((ckpt / "best.h5").string())) << "best.h5 is not complete";
  }
}

// The LD_PRELOAD shim of tests/io/fault_injection (env RESIDUAL_FAULT_SHIM, else the one
// built with the tests).
std::string fault_shim_path() {
  const char* env = std::getenv("RESIDUAL_FAULT_SHIM");
  return env && *env ? env : RESIDUAL_FAULT_SHIM;
}

SpawnOptions with_fault(const Fault& f, const fs::path& target, long n, const fs::path& report) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  SpawnOptions o;
  o.env = {{"LD_PRELOAD", fault_shim_path()},
           {"RESIDUAL_FAULT_PATH", target.string()},
           {"RESIDUAL_FAULT_OP", f.op},
           {"RESIDUAL_FAULT_NTH", std::to_string(n)},
           {"RESIDUAL_FAULT_COUNT", f.count},
           {"RESIDUAL_FAULT_ERRNO", f.error},
           {"RESIDUAL_FAULT_MODE", f.mode},
           {"RESIDUAL_FAULT_REPORT", report.string()},
           // An ASan build refuses a preloaded library ahead of its runtime otherwise.
           {"ASAN_OPTIONS", std::string(asan ? asan : "") + ":verify_asan_link_order=0"}};
  return o;
}

// Runs `args` with fault `f` on files under `target` at N = 1, 2, ...; `prepare` resets the
// files before each run, `check(succeeded)` verifies them after. Returns the runs that met
// the fault (the last run met none and must succeed).
int run_with_faults(const Fault& f, const fs::path& target, const std::vector<std::string>& args,
                    const std::function<void()>& prepare,
                    const std::function<void(bool succeeded)>& check) {
  TempDir scratch;
  const fs::path report = scratch / "faults";
  for (long n = 1; n <= 40; ++n) {
    SCOPED_TRACE(std::string(f.name) + " at call " + std::to_string(n));
    prepare();
    fs::remove(report);
    const CliResult r = run_cli_with(args, with_fault(f, target, n, report));
    const bool met = fs::exists(report);
    EXPECT_EQ(r.signal, 0) << describe(r);
    EXPECT_EQ(temp_files(target), std::vector<std::string>{}) << describe(r);
    if (!met) {
      EXPECT_EQ(r.exit_code, 0) << describe(r);
      check(true);
      return static_cast<int>(n - 1);
    }
    // A fault the program may shrug off (closing the lock file at exit) must leave the
    // complete result; any other must be the error.
    if (r.exit_code != 0) expect_error_line(r, f.cause);
    check(r.exit_code == 0);
    if (::testing::Test::HasFailure()) return -1;
  }
  ADD_FAILURE() << f.name << ": still meeting the fault after 40 runs";
  return -1;
}

class CliFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  TempDir dir_;
};

std::string fault_name(const ::testing::TestParamInfo<Fault>& fault) { return fault.param.name; }

INSTANTIATE_TEST_SUITE_P(Faults, CliFaultTest, ::testing::ValuesIn(kFaults), fault_name);

TEST_P(CliFaultTest, Train) {
  const fs::path work = dir_ / "work", ckpt = work / "ckpt", metrics = work / "m.csv";
  // A lost write is caught by reading a file back, which an append does not do: it is
  // aimed at the checkpoint directory only.
  const fs::path target = std::string(GetParam().mode) == "lie" ? ckpt : work;
  const int runs = run_with_faults(
      GetParam(), target, train_command(ckpt, metrics),
      [&] {
        fs::remove_all(work);
        fs::create_directories(ckpt);
      },
      [&](bool succeeded) { check_training_files(ckpt, metrics, succeeded); });
  EXPECT_GT(runs, 0);
}

// `args` writing `output`, which holds an older version before each run: afterwards it is
// that version or exactly `expected`.
void expect_old_or_new(const Fault& f, const fs::path& output, const std::vector<std::string>& args,
                       const std::string& expected) {
  const std::string old_text = "an older version\n";
  const int runs = run_with_faults(
      f, output.parent_path(), args, [&] { write_text(output, old_text); },
      [&](bool succeeded) {
        const std::string now = read_text(output);
        if (succeeded) {
          EXPECT_TRUE(now == expected) << "a different file of " << now.size() << " bytes";
        }
        EXPECT_TRUE(now == old_text || now == expected)
            << "a torn file of " << now.size() << " bytes";
      });
  EXPECT_GT(runs, 0);
}

void expect_predictions_old_or_new(const Fault& f, const fs::path& out,
                                   const std::string& expected) {
  expect_old_or_new(
      f, out, {"predict", "--checkpoint", reference().ckpt.string(), "--threads", "1", "-o", out},
      expected);
}

TEST_P(CliFaultTest, PredictCsv) {
  expect_predictions_old_or_new(GetParam(), dir_ / "p.csv", reference().predictions_csv);
}

TEST_P(CliFaultTest, PredictHdf5) {
  expect_predictions_old_or_new(GetParam(), dir_ / "p.h5", reference().predictions_h5);
}

TEST_P(CliFaultTest, Plot) {
  const fs::path out = dir_ / "c.svg";
  expect_old_or_new(GetParam(), out, {"plot", "--metrics", reference().metrics.string(), "-o", out},
                    reference().plot);
}

TEST_P(CliFaultTest, ExportModel) {
  const fs::path out = dir_ / "m.json";
  expect_old_or_new(GetParam(), out, {"export-model", "--model", tiny_bn_model(), "-o", out},
                    reference().model_json);
}

// --- RLIMIT_FSIZE: a file may not grow past the limit (EFBIG) --------------------------------

TEST(CliFileSizeLimit, TrainFailsAtTheFirstCheckpointThatDoesNotFit) {
  TempDir dir;
  const fs::path ckpt = dir / "ckpt", metrics = dir / "m.csv";
  const auto checkpoint_bytes = fs::file_size(reference().ckpt / latest_name(reference().ckpt));
  SpawnOptions o;
  o.file_size_limit = static_cast<long long>(checkpoint_bytes) / 2;
  const CliResult r = run_cli_with(train_command(ckpt, metrics), o);
  expect_error_line(r, "File too large");
  EXPECT_NE(r.err.find("checkpoint '" + (ckpt / "ckpt-e0001-s000000004.h5").string() + "'"),
            std::string::npos)
      << r.err;
  check_training_files(ckpt, metrics, false);
  EXPECT_EQ(latest_name(ckpt), "");
  EXPECT_EQ(read_metrics_csv(metrics).size(), 1u) << "the first epoch's row is kept";
}

TEST(CliFileSizeLimit, OutputsKeepTheirOlderVersion) {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string output;
  };
  const std::vector<Case> cases = {
      {{"predict", "--checkpoint", reference().ckpt.string(), "--threads", "1", "-o",
        dir / "p.csv"},
       "p.csv"},
      {{"predict", "--checkpoint", reference().ckpt.string(), "--threads", "1", "-o", dir / "p.h5"},
       "p.h5"},
      {{"plot", "--metrics", reference().metrics.string(), "-o", dir / "c.svg"}, "c.svg"},
      {{"export-model", "--model", tiny_bn_model(), "-o", dir / "m.json"}, "m.json"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.output);
    write_text(dir / c.output, "an older version\n");
    SpawnOptions o;
    o.file_size_limit = 300;  // more than the error line, less than any of the outputs
    expect_error_line(run_cli_with(c.args, o), "File too large");
    EXPECT_EQ(read_text(dir / c.output), "an older version\n");
  }
  EXPECT_EQ(temp_files(dir.path()), std::vector<std::string>{});
}

// --- a real full disk and a real read-only directory: a tmpfs -----------------------------

class Tmpfs {
 public:
  Tmpfs(const fs::path& where, size_t bytes)
      : where_(where), size_("size=" + std::to_string(bytes)) {
    fs::create_directories(where);
    mounted_ = ::mount("tmpfs", where.c_str(), "tmpfs", 0, size_.c_str()) == 0;
    if (!mounted_) why_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(where_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  bool remount_read_only() {
    return ::mount(nullptr, where_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, size_.c_str()) == 0;
  }

 private:
  fs::path where_;
  std::string size_, why_;
  bool mounted_ = false;
};

#define MOUNT_OR_SKIP(fs_)                                                                   \
  if (!(fs_).mounted())                                                                      \
  GTEST_SKIP() << "cannot mount a tmpfs here (" << (fs_).why()                               \
               << "): the real full-disk and read-only tests need root with CAP_SYS_ADMIN; " \
                  "the shim and RLIMIT_FSIZE tests cover the same paths"

TEST(CliTmpfs, TrainOnASmallFileSystemFailsCleanlyWhereverTheDiskFills) {
  TempDir dir;
  // From one page (the lock and the metrics file fill it) to room for everything.
  for (size_t kib = 4; kib <= 124; kib += 8) {
    SCOPED_TRACE(std::to_string(kib) + " KiB");
    const fs::path mnt = dir / ("fs" + std::to_string(kib));
    Tmpfs tmpfs(mnt, kib * 1024);
    MOUNT_OR_SKIP(tmpfs);
    const fs::path ckpt = mnt / "ckpt", metrics = mnt / "m.csv";
    const CliResult r = run_cli(train_command(ckpt, metrics));
    if (r.exit_code != 0) expect_error_line(r, "No space left on device");
    check_training_files(ckpt, metrics, r.exit_code == 0);
    if (::testing::Test::HasFailure()) return;
    if (r.exit_code == 0) return;  // everything fits from here on
  }
  ADD_FAILURE() << "the run never fitted";
}

TEST(CliTmpfs, EveryWriterOnAReadOnlyDirectoryFailsAtOnceAndChangesNothing) {
  TempDir dir;
  const fs::path mnt = dir / "fs";
  Tmpfs tmpfs(mnt, 1 << 20);
  MOUNT_OR_SKIP(tmpfs);
  const fs::path ckpt = mnt / "ckpt", metrics = mnt / "m.csv";
  ASSERT_EQ(run_cli(train_command(ckpt, metrics, "1")).exit_code, 0);
  for (const char* name : {"p.csv", "c.svg", "m.json"})
    write_text(mnt / name, "an older version\n");
  ASSERT_TRUE(tmpfs.remount_read_only()) << std::strerror(errno);
  const std::string before = describe_listing(mnt) + describe_listing(ckpt);

  std::vector<std::string> resume = train_args({"--resume", ckpt.string(), "--epochs", "2"});
  const CliResult r = run_cli(resume);
  expect_error_line(r, "Read-only file system");
  EXPECT_EQ(r.out.find("epoch 2/2"), std::string::npos) << "it trained before failing:\n" << r.out;
  expect_error_line(run_cli({"predict", "--checkpoint", ckpt.string(), "-o", mnt / "p.csv"}),
                    "Read-only file system");
  expect_error_line(run_cli({"plot", "--metrics", metrics.string(), "-o", mnt / "c.svg"}),
                    "Read-only file system");
  expect_error_line(run_cli({"export-model", "--model", tiny_bn_model(), "-o", mnt / "m.json"}),
                    "Read-only file system");
  EXPECT_EQ(describe_listing(mnt) + describe_listing(ckpt), before);
}

}  // namespace
}  // namespace residual::cli_test
