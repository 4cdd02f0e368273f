// Every writer under injected faults (fault_injection/fault_injection.h, linked into this
// program): a full disk (a short write, then every write fails), a write error, a failed
// fsync, a failed close, a read-only directory (open and rename), and a write that reports
// success but stores nothing. The Nth call of the kind fails, for N = 1, 2, ... until a
// whole write passes without meeting the fault. Each time the writer must throw one
// residual::Error naming the file and the cause, leave no temporary file, leave every named
// file complete (the previous version, or the new one when only the final directory sync
// failed), and leave no HDF5 object open.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "fault_injection.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/checkpoint_store.h"
#include "io/metrics_writer.h"
#include "io/prediction_writer.h"
#include "io_test_util.h"

namespace residual {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

struct Fault {
  const char* name;
  residual_fault_op op;
  long count;  // calls that fail from the Nth on; 0: all of them
  int error;
  residual_fault_mode mode;
};

const std::vector<Fault> kFaults = {
    {"disk full", RESIDUAL_FAULT_WRITE, 0, ENOSPC, RESIDUAL_FAULT_SHORT},
    {"write error", RESIDUAL_FAULT_WRITE, 1, EIO, RESIDUAL_FAULT_FAIL},
    {"fsync error", RESIDUAL_FAULT_FSYNC, 1, EIO, RESIDUAL_FAULT_FAIL},
    {"close error", RESIDUAL_FAULT_CLOSE, 1, ENOSPC, RESIDUAL_FAULT_FAIL},
    {"read-only directory", RESIDUAL_FAULT_OPEN, 0, EROFS, RESIDUAL_FAULT_FAIL},
    {"read-only rename", RESIDUAL_FAULT_RENAME, 0, EROFS, RESIDUAL_FAULT_FAIL},
    {"lost write", RESIDUAL_FAULT_WRITE, 1, 0, RESIDUAL_FAULT_LIE},
};

void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

// What the error must say: the cause, or for a lost write that the read-back caught it.
std::string cause(const Fault& f) { return f.error ? std::strerror(f.error) : "read back"; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Temporary files (".NAME.tmp") left in `dir`.
std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() > 4 && n[0] == '.' && n.compare(n.size() - 4, 4, ".tmp") == 0) found.push_back(n);
  }
  return found;
}

ssize_t open_hdf5_objects() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

// Runs `action` with `fault` armed at N = 1, 2, ... (files under `dir`). After each run
// `check(failed)` verifies the files. Returns the number of runs that met the fault.
int run_with_faults(const Fault& fault, const std::string& dir, const std::function<void()>& setup,
                    const std::function<void()>& action, const std::vector<std::string>& needles,
                    const std::function<void(bool failed)>& check, bool must_fail = true) {
  for (long n = 1; n <= 60; ++n) {
    SCOPED_TRACE(std::string(fault.name) + ", call " + std::to_string(n));
    setup();
    residual_fault_arm(dir.c_str(), fault.op, n, fault.count, fault.error, fault.mode);
    std::string message;
    bool failed = false;
    try {
      action();
    } catch (const Error& e) {
      failed = true;
      message = e.what();
    }
    const long injected = residual_fault_injected();
    residual_fault_disarm();
    EXPECT_EQ(temp_files(dir), std::vector<std::string>{}) << message;
    EXPECT_EQ(open_hdf5_objects(), 0) << message;
    if (injected == 0) {
      EXPECT_FALSE(failed) << message;
      check(false);
      return static_cast<int>(n - 1);
    }
    // A fault the writer may shrug off (the pid in a lock file) must still give a correct
    // result; any other must be an error.
    if (must_fail) {
      EXPECT_TRUE(failed) << "the fault was met but no error was raised";
    }
    if (failed) {
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      for (const std::string& needle : needles) {
        EXPECT_NE(message.find(needle), std::string::npos)
            << "'" << needle << "' not in: " << message;
      }
      EXPECT_NE(message.find(cause(fault)), std::string::npos) << message;
    }
    check(failed);
    if (::testing::Test::HasFailure()) return -1;
  }
  ADD_FAILURE() << fault.name << ": still meeting the fault after 60 runs";
  return -1;
}

class WriterFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  TempDir dir_;
};

std::string fault_name(const ::testing::TestParamInfo<Fault>& info) {
  std::string name = info.param.name;
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Faults, WriterFaultTest, ::testing::ValuesIn(kFaults), fault_name);

TEST_P(WriterFaultTest, AtomicFileIsTheOldOrTheNewText) {
  const std::string path = dir_.file("note.txt");
  const std::string old_text = "the previous version\n";
  std::string text(3 << 20, 'x');  // several buffers' worth
  for (size_t i = 0; i < text.size(); i += 4096) text[i] = '\n';
  const int runs = run_with_faults(
      GetParam(), dir_.path(),
      [&] {
        test::write_file(path, {old_text.begin(), old_text.end()});
      },
      [&] { write_file_atomically(path, text); }, {"'" + path + "'"},
      [&](bool failed) {
        const std::string now = read_text(path);
        if (!failed) {
          EXPECT_TRUE(now == text);
        }
        EXPECT_TRUE(now == old_text || now == text) << "torn file of " << now.size() << " bytes";
      });
  EXPECT_GT(runs, 0);
}

Checkpoint small_checkpoint(int64_t epoch) {
  Checkpoint c;
  c.model = {{"name", "m"}};
  c.config = {{"lr", 0.1}};
  c.optimizer = "sgd";
  c.epoch = c.best_epoch = epoch;
  c.global_step = epoch * 10;
  c.best_metric = "val_top1";
  for (const char* name : {"conv/kernel", "conv/bias", "fc/kernel"}) {
    Tensor t = Tensor::empty(Shape{64, 33});
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(epoch * 1000 + i);
    c.parameters[name] = t;
    c.optimizer_state[std::string(name) + "/momentum"] = t;
  }
  return c;
}

TEST_P(WriterFaultTest, CheckpointIsTheOldOrTheNewOne) {
  const std::string path = dir_.file("c.h5");
  const int runs = run_with_faults(
      GetParam(), dir_.path(), [&] { write_checkpoint(path, small_checkpoint(1)); },
      [&] { write_checkpoint(path, small_checkpoint(2)); }, {"checkpoint", "'" + path + "'"},
      [&](bool failed) {
        int64_t epoch = -1;
        try {
          epoch = read_checkpoint(path).epoch;
        } catch (const Error& e) {
          ADD_FAILURE() << "the named checkpoint is not complete: " << e.what();
        }
        if (!failed) {
          EXPECT_EQ(epoch, 2);
        }
        EXPECT_TRUE(epoch == 1 || epoch == 2) << epoch;
      });
  EXPECT_GT(runs, 0);
}

TEST_P(WriterFaultTest, CheckpointStoreLatestAlwaysNamesACompleteCheckpoint) {
  const std::string ckpt_dir = dir_.file("run");
  int64_t epoch = 1;
  const int runs = run_with_faults(
      GetParam(), dir_.path(),
      [&] {
        fs::remove_all(ckpt_dir);
        CheckpointPolicy policy;
        policy.dir = ckpt_dir;
        CheckpointStore(policy).save(small_checkpoint(1));
      },
      [&] {
        CheckpointPolicy policy;
        policy.dir = ckpt_dir;
        CheckpointStore store(policy);
        for (epoch = 2; epoch <= 3; ++epoch) store.save(small_checkpoint(epoch));
      },
      {"'" + ckpt_dir},
      [&](bool failed) {
        const std::string latest = CheckpointStore::resolve(ckpt_dir);
        for (const auto& e : fs::directory_iterator(ckpt_dir)) {
          const std::string name = e.path().filename().string();
          if (e.path().extension() != ".h5") continue;
          EXPECT_NO_THROW(read_checkpoint(e.path().string())) << name << " is not complete";
        }
        const int64_t latest_epoch = read_checkpoint(latest).epoch;
        if (!failed) {
          EXPECT_EQ(latest_epoch, 3);
        }
        EXPECT_GE(latest_epoch, 1);
        EXPECT_LE(latest_epoch, epoch);
      },
      /*must_fail=*/false);
  EXPECT_GT(runs, 0);
}

// A row of probabilities for 10 samples of 3 classes, and the labels.
void write_predictions(const std::string& path) {
  std::vector<float> p(30);
  std::vector<int32_t> labels(10);
  for (int i = 0; i < 30; ++i) p[i] = static_cast<float>(i % 7) / 7.f;
  for (int i = 0; i < 10; ++i) labels[i] = i % 3;
  PredictionWriter w(path, 10, 3);
  w.write(p.data(), labels.data(), 6);
  w.write(p.data() + 18, labels.data() + 6, 4);
  EXPECT_EQ(w.finish(), 10);
}

void check_predictions(const std::string& ext, const Fault& fault, const std::string& dir) {
  const std::string reference_path = dir + "/../reference" + ext;
  write_predictions(reference_path);
  const std::string reference = read_text(reference_path);
  fs::remove(reference_path);
  const std::string path = dir + "/p" + ext;
  const std::string old_text = "previous predictions\n";
  const int runs = run_with_faults(
      fault, dir,
      [&] {
        test::write_file(path, {old_text.begin(), old_text.end()});
      },
      [&] { write_predictions(path); }, {"'" + path + "'"},
      [&](bool failed) {
        const std::string now = read_text(path);
        if (!failed) {
          EXPECT_TRUE(now == reference);
        }
        EXPECT_TRUE(now == old_text || now == reference)
            << "torn file of " << now.size() << " bytes";
      });
  EXPECT_GT(runs, 0);
}

TEST_P(WriterFaultTest, PredictionsCsvAreTheOldOrTheNewFile) {
  fs::create_directory(dir_.file("out"));
  check_predictions(".csv", GetParam(), dir_.file("out"));
}

TEST_P(WriterFaultTest, PredictionsHdf5AreTheOldOrTheNewFile) {
  fs::create_directory(dir_.file("out"));
  check_predictions(".h5", GetParam(), dir_.file("out"));
}

// --- appends -------------------------------------------------------------------------

const std::vector<std::pair<std::string, double>> kRow1{{"epoch", 1}, {"loss", 0.5}};
const std::vector<std::pair<std::string, double>> kRow2{{"epoch", 2}, {"loss", 0.25}};
const std::vector<std::pair<std::string, double>> kRow3{{"epoch", 3}, {"loss", 0.125}};

void expect_append_error(const std::string& path, const std::string& ext, const std::string& first,
                         const std::string& third) {
  // The disk fills during the second row: half of it is written, then nothing more.
  residual_fault_arm(path.c_str(), RESIDUAL_FAULT_WRITE, 2, 0, ENOSPC, RESIDUAL_FAULT_SHORT);
  MetricsWriter w(path, false);
  w.write(kRow1);
  test::expect_error([&] { w.write(kRow2); },
                     {"metrics file", "'" + path + "'", "No space left on device"});
  EXPECT_GT(residual_fault_injected(), 0) << ext;
  residual_fault_disarm();
  EXPECT_EQ(read_text(path), first) << "a failed append leaves whole rows only";
  w.write(kRow3);  // space again: the writer goes on where the file ends
  EXPECT_EQ(read_text(path), first + third);
}

TEST(MetricsAppendFault, AFailedAppendIsAnErrorAndLeavesWholeRows) {
  TempDir dir;
  expect_append_error(dir.file("m.csv"), ".csv", "epoch,loss\n1,0.5\n", "3,0.125\n");
  expect_append_error(dir.file("m.jsonl"), ".jsonl", "{\"epoch\":1.0,\"loss\":0.5}\n",
                      "{\"epoch\":3.0,\"loss\":0.125}\n");
}

TEST(MetricsAppendFault, AFailedHeaderIsWrittenWithTheNextRow) {
  TempDir dir;
  const std::string path = dir.file("m.csv");
  residual_fault_arm(path.c_str(), RESIDUAL_FAULT_WRITE, 1, 1, EIO, RESIDUAL_FAULT_FAIL);
  MetricsWriter w(path, false);
  test::expect_error([&] { w.write(kRow1); }, {"'" + path + "'", "Input/output error"});
  residual_fault_disarm();
  EXPECT_EQ(read_text(path), "");
  w.write(kRow2);
  EXPECT_EQ(read_text(path), "epoch,loss\n2,0.25\n");
}

TEST(MetricsAppendFault, AReadOnlyDirectoryIsAnErrorAtOnce) {
  TempDir dir;
  const std::string path = dir.file("m.csv");
  residual_fault_arm(dir.path().c_str(), RESIDUAL_FAULT_OPEN, 1, 0, EROFS, RESIDUAL_FAULT_FAIL);
  test::expect_error([&] { MetricsWriter w(path, false); },
                     {"metrics file", "'" + path + "'", "Read-only file system"});
  residual_fault_disarm();
  EXPECT_FALSE(fs::exists(path));
}

// --- HDF5 errors inside a write ---------------------------------------------------------

TEST(CheckpointHdf5Error, ClosesEveryObjectAndLeavesNoFile) {
  TempDir dir;
  Checkpoint c = small_checkpoint(1);
  // "a" is a dataset, so "a/b" cannot be created below it: HDF5 fails mid-write.
  c.parameters["a"] = c.parameters.begin()->second;
  c.parameters["a/b"] = c.parameters.begin()->second;
  const std::string path = dir.file("c.h5");
  test::expect_error([&] { write_checkpoint(path, c); }, {"'" + path + "'", "parameters/a/b"});
  EXPECT_EQ(open_hdf5_objects(), 0);
  EXPECT_EQ(temp_files(dir.path()), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace residual
