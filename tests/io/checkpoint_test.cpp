#include "io/checkpoint.h"

#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "h5_writer.h"
#include "io/atomic_file.h"
#include "io/checkpoint_store.h"
#include "io_test_util.h"

namespace residual {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;

// A tensor whose float i has the bits `base + i * 7919`: distinct, and with `specials`
// the awkward values (-0, a denormal, infinities, a NaN with a payload) in front.
Tensor pattern_tensor(const Shape& shape, uint32_t base, bool specials = false) {
  Tensor t = Tensor::empty(shape);
  auto* bits = static_cast<uint32_t*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) bits[i] = base + static_cast<uint32_t>(i) * 7919u;
  const uint32_t awkward[] = {0x80000000u, 0x00000001u, 0x7f800000u,
                              0xff800000u, 0x7fc12345u, 0x7f7fffffu};
  if (specials) std::copy(std::begin(awkward), std::end(awkward), bits);  // numel >= 6
  return t;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The tensors of a two-layer model (conv + BN, dense) trained with momentum SGD.
Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.model = {{"name", "tiny"},
             {"input", {28, 28, 1}},
             {"layers",
              {{{"type", "conv2d"}, {"name", "conv1"}, {"filters", 4}, {"kernel", 3}},
               {{"type", "dense"}, {"name", "dense"}, {"units", 10}}}}};
  c.config = {
      {"lr", 0.05}, {"note", "ünïcødé ✓ \"quoted\" \\ \x01"}, {"empty", nlohmann::json::object()}};
  c.parameters["conv1/kernel"] = pattern_tensor({3, 3, 1, 4}, 0x3f800000u, true);
  c.parameters["conv1/bias"] = pattern_tensor({4}, 0x3c000000u);
  c.parameters["dense/kernel"] = pattern_tensor({16, 10}, 0xbd000000u);
  c.parameters["dense/bias"] = pattern_tensor({10}, 0x3a000000u);
  c.buffers["bn1/moving_mean"] = pattern_tensor({4}, 0x3e000000u);
  c.buffers["bn1/moving_variance"] = pattern_tensor({4}, 0x3f000000u);
  c.optimizer = "sgd";
  c.optimizer_steps = 12345;
  for (const auto& [name, t] : c.parameters) {
    c.optimizer_state[name + "/momentum"] = pattern_tensor(t.shape(), 0x38000000u);
  }
  c.epoch = 7;
  c.global_step = 12345;
  c.batch_in_epoch = 3;
  c.samples_in_epoch = 96;
  c.correct_in_epoch = 81;
  c.loss_sum_in_epoch = 12.375000000000002;
  c.seed = 0xfedcba9876543210ULL;  // the top bit set: stored unsigned
  c.global_batch_size = 32;
  c.world_size = 2;
  c.learning_rate = 0.1 * 0.5;
  c.metrics = nlohmann::json::array(
      {{{"epoch", 1}, {"val_top1", 0.5}}, {{"epoch", 2}, {"val_top1", 0.75}}});
  c.best_metric = "val_top1";
  c.best_value = 0.7512345678901234;
  c.best_epoch = 2;
  return c;
}

void expect_same_tensors(const std::map<std::string, Tensor>& expected,
                         const std::map<std::string, Tensor>& actual, const std::string& group) {
  ASSERT_EQ(expected.size(), actual.size()) << group;
  for (const auto& [name, t] : expected) {
    const auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << group << "/" << name << " was not read back";
    EXPECT_TRUE(bit_equal(t, it->second)) << group << "/" << name << " differs";
  }
}

// Every scalar field, for one comparison.
auto scalars(const Checkpoint& c) {
  return std::make_tuple(c.optimizer, c.optimizer_steps, c.epoch, c.global_step, c.batch_in_epoch,
                         c.samples_in_epoch, c.correct_in_epoch, c.loss_sum_in_epoch, c.seed,
                         c.global_batch_size, c.world_size, c.learning_rate, c.best_metric,
                         c.best_value, c.best_epoch);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  const std::string text = read_text(path);
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::set<std::string> directory_entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.insert(entry.path().filename().string());
  return names;
}

TEST(Checkpoint, RoundTripKeepsEveryField) {
  TempDir dir;
  const Checkpoint c = sample_checkpoint();
  write_checkpoint(dir.file("c.h5"), c);
  const Checkpoint r = read_checkpoint(dir.file("c.h5"));
  EXPECT_EQ(std::tie(r.model, r.config, r.metrics), std::tie(c.model, c.config, c.metrics));
  expect_same_tensors(c.parameters, r.parameters, "parameters");
  expect_same_tensors(c.buffers, r.buffers, "buffers");
  expect_same_tensors(c.optimizer_state, r.optimizer_state, "optimizer");
  // Doubles too must come back exact.
  EXPECT_EQ(scalars(r), scalars(c));
  EXPECT_EQ(checkpoint_checksum(r), checkpoint_checksum(c));
}

TEST(Checkpoint, RoundTripOfAnEmptyCheckpoint) {
  TempDir dir;
  write_checkpoint(dir.file("empty.h5"), Checkpoint());  // no tensors, empty strings
  const Checkpoint r = read_checkpoint(dir.file("empty.h5"));
  EXPECT_TRUE(r.parameters.empty() && r.buffers.empty() && r.optimizer_state.empty());
  EXPECT_EQ(r.metrics, nlohmann::json::array());
  EXPECT_EQ(scalars(r), scalars(Checkpoint()));
}

TEST(Checkpoint, AtomicWriteLeavesOnlyTheFinishedFile) {
  TempDir dir;
  Checkpoint c = sample_checkpoint();
  write_checkpoint(dir.file("c.h5"), c);
  EXPECT_EQ(directory_entries(dir.path()), (std::set<std::string>{"c.h5"}));
  // Overwriting an existing checkpoint replaces it, again without leftovers.
  c.epoch = 8;
  write_checkpoint(dir.file("c.h5"), c);
  EXPECT_EQ(directory_entries(dir.path()), (std::set<std::string>{"c.h5"}));
  EXPECT_GT(H5Fis_hdf5(dir.file("c.h5").c_str()), 0);
  const hid_t file = H5Fopen(dir.file("c.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(file, 0);
  if (file >= 0) H5Fclose(file);
  EXPECT_EQ(read_checkpoint(dir.file("c.h5")).epoch, 8);

  write_file_atomically(dir.file("note.txt"), "hello\n");
  EXPECT_EQ(directory_entries(dir.path()), (std::set<std::string>{"c.h5", "note.txt"}));
  EXPECT_EQ(read_text(dir.file("note.txt")), "hello\n");
}

// --- the layout: the objects `h5dump -H` lists, as "/group/dataset" and "/group/@attr".
std::set<std::string> h5dump_names(const std::string& file) {
  FILE* pipe = ::popen(("h5dump -H '" + file + "' 2>&1").c_str(), "r");
  if (pipe == nullptr) return {};
  std::string output;
  char chunk[4096];
  for (size_t got; (got = std::fread(chunk, 1, sizeof(chunk), pipe)) > 0;)
    output.append(chunk, got);
  EXPECT_EQ(::pclose(pipe), 0) << output;
  const std::regex object(R"re( *(GROUP|DATASET|ATTRIBUTE) "([^"]*)" \{)re");
  const std::regex closing(R"re( *\}.*)re");
  std::set<std::string> names;
  std::vector<std::string> paths{""};  // one per open brace: the path of the object it opens
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, object)) {
      const std::string kind = m[1] == "ATTRIBUTE" ? "/@" : "/";
      paths.push_back(m[2] == "/" ? "" : paths.back() + kind + m[2].str());
      if (!paths.back().empty()) names.insert(paths.back());
    } else if (std::regex_match(line, closing)) {
      if (paths.size() > 1) paths.pop_back();
    } else if (!line.empty() && line.back() == '{') {
      paths.push_back(paths.back());
    }
  }
  return names;
}

TEST(Checkpoint, H5dumpListsTheDocumentedNames) {
  if (std::system("command -v h5dump >/dev/null") != 0)
    GTEST_SKIP() << "h5dump is not on PATH (Debian: apt install hdf5-tools)";
  TempDir dir;
  write_checkpoint(dir.file("c.h5"), sample_checkpoint());
  const std::set<std::string> names = h5dump_names(dir.file("c.h5"));
  // The root's attributes and datasets, the three tensor groups, and nested tensor names.
  std::istringstream expected_names(
      "/@format /@format_version /@tensor_checksum /@epoch /@global_step /@batch_in_epoch /@seed "
      "/@world_size /@global_batch_size /@optimizer /@best_metric /model_json /config_json "
      "/metrics_json /parameters /buffers /optimizer /parameters/conv1 /parameters/conv1/kernel "
      "/parameters/conv1/bias /parameters/dense/kernel /buffers/bn1/moving_mean "
      "/buffers/bn1/moving_variance /optimizer/conv1/kernel/momentum "
      "/optimizer/dense/bias/momentum");
  for (std::string expected; expected_names >> expected;) {
    EXPECT_EQ(names.count(expected), 1u) << expected << " is not in h5dump -H's listing";
  }
}

// --- bad input: each an Error naming the file ----------------------------------------

TEST(Checkpoint, MissingEmptyOrNonHdf5File) {
  TempDir dir;
  expect_error([&] { read_checkpoint(dir.file("nope.h5")); },
               {dir.file("nope.h5"), "does not exist"});
  expect_error([&] { read_checkpoint(dir.path()); }, {dir.path(), "not a file"});
  test::write_file(dir.file("empty.h5"), {});
  expect_error([&] { read_checkpoint(dir.file("empty.h5")); },
               {dir.file("empty.h5"), "not a residual checkpoint"});
  test::write_file(dir.file("text.h5"), std::vector<uint8_t>(600, 'x'));
  expect_error([&] { read_checkpoint(dir.file("text.h5")); },
               {dir.file("text.h5"), "not a residual checkpoint"});
}

TEST(Checkpoint, TruncatedFile) {
  TempDir dir;
  write_checkpoint(dir.file("full.h5"), sample_checkpoint());
  const std::vector<uint8_t> bytes = read_bytes(dir.file("full.h5"));
  ASSERT_GT(bytes.size(), 1000u);
  for (const int percent : {10, 50, 99}) {
    const std::string cut = dir.file("cut" + std::to_string(percent) + ".h5");
    test::write_file(
        cut, std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() * percent / 100));
    SCOPED_TRACE(cut);
    expect_error([&] { read_checkpoint(cut); }, {cut});
  }
  const std::string last = dir.file("minus1.h5");
  test::write_file(last, std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
  expect_error([&] { read_checkpoint(last); }, {last, "truncated"});
}

// Writes `c`, overwrites the one copy of the bytes `from` in the file with `to` (as long),
// and expects reading it back to fail with an Error naming the file and `why`. `reseal`
// recomputes the header's CRC-32 afterwards, to reach the checks behind it.
void expect_corrupt(const Checkpoint& c, const std::string& from, const std::string& to,
                    const std::string& why, bool reseal = true) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, c);
  std::string bytes = read_text(path);
  const size_t at = bytes.find(from);
  ASSERT_NE(at, std::string::npos) << "the bytes to corrupt are not in the file";
  EXPECT_EQ(bytes.find(from, at + 1), std::string::npos);
  bytes.replace(at, to.size(), to);
  test::write_file(path, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  if (reseal) seal_checkpoint_file(path);
  expect_error([&] { read_checkpoint(path); }, {path, why});
}

TEST(Checkpoint, CorruptTensorBytesFailTheChecksum) {
  Checkpoint c = sample_checkpoint();
  c.parameters["dense/kernel"] = pattern_tensor({16, 10}, 0x41a00000u);
  // The tensor's raw bytes lie in the file as they are in memory (contiguous, F32LE).
  const auto* raw = static_cast<const char*>(c.parameters["dense/kernel"].raw());
  const std::string tensor(raw, raw + 640);
  std::string flipped = tensor;
  for (size_t i = 320; i < 323; ++i) flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
  // Caught by the header's CRC-32 before HDF5 parses anything...
  expect_corrupt(c, tensor, flipped, "CRC-32 does not match", false);
  // ...and, were the CRC recomputed, by the tensor checksum behind it.
  expect_corrupt(c, tensor, flipped, "checksum mismatch");
}

// The first found by fuzz/checkpoint_fuzzer: a number beyond the range of double threw
// nlohmann's out_of_range, not an Error.
TEST(Checkpoint, CorruptJson) {
  Checkpoint c = sample_checkpoint();
  c.config = {{"x", 1000000000}};
  const std::string why = "'config_json' is not valid JSON";
  expect_corrupt(c, R"({"x":1000000000})", R"({"x":1e99999999})", why);
  expect_corrupt(c, R"({"x":1000000000})", R"({"x":10000000{0})", why);
}

TEST(Checkpoint, ForeignHdf5File) {
  TempDir dir;
  test::H5Writer(dir.file("images.h5"))  // closed at the end of the statement
      .write("images", H5T_NATIVE_FLOAT, {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  expect_error([&] { read_checkpoint(dir.file("images.h5")); },
               {dir.file("images.h5"), "not a residual checkpoint"});
}

// Rewrites the int64 attribute `name` of the file's root group.
void overwrite_attribute(const std::string& path, const char* name, int64_t value) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0) << path;
  const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  EXPECT_GE(attr, 0) << name;
  EXPECT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &value), 0);
  H5Aclose(attr);
  H5Fclose(file);
}

TEST(Checkpoint, NewerFormatVersion) {
  TempDir dir;
  write_checkpoint(dir.file("c.h5"), sample_checkpoint());
  // The version in the header (bytes 28-31, little-endian) is read before HDF5 is.
  std::vector<uint8_t> bytes = read_bytes(dir.file("c.h5"));
  bytes[28] = 99;
  test::write_file(dir.file("header.h5"), bytes);
  expect_error([&] { read_checkpoint(dir.file("header.h5")); },
               {dir.file("header.h5"), "format version 99", "upgrade residual"});
  overwrite_attribute(dir.file("c.h5"), "format_version", 99);
  seal_checkpoint_file(dir.file("c.h5"));
  expect_error([&] { read_checkpoint(dir.file("c.h5")); },
               {dir.file("c.h5"), "format version 99", "upgrade residual"});
  overwrite_attribute(dir.file("c.h5"), "format_version", 0);
  seal_checkpoint_file(dir.file("c.h5"));
  expect_error([&] { read_checkpoint(dir.file("c.h5")); },
               {dir.file("c.h5"), "bad format version 0"});
}

// --- CheckpointStore ------------------------------------------------------------------

Checkpoint at(int64_t epoch, int64_t step, int64_t best_epoch = 0, int64_t batch_in_epoch = 0) {
  Checkpoint c;
  std::tie(c.epoch, c.global_step, c.best_epoch, c.batch_in_epoch) =
      std::tie(epoch, step, best_epoch, batch_in_epoch);
  c.parameters["w"] = pattern_tensor({4}, 0x3f800000u + static_cast<uint32_t>(step));
  return c;
}

TEST(CheckpointStore, SaveMovesLatestAndResolveFollowsIt) {
  TempDir dir;
  CheckpointPolicy policy;
  policy.dir = dir.file("ckpt");  // created by the store
  CheckpointStore store(policy);
  const std::string first = store.save(at(1, 10));
  EXPECT_EQ(first, dir.file("ckpt/ckpt-e0001-s000000010.h5"));
  EXPECT_EQ(read_text(policy.dir + "/latest"), "ckpt-e0001-s000000010.h5\n");
  EXPECT_EQ(CheckpointStore::resolve(policy.dir), first);
  const std::string second = store.save(at(1, 15, 0, 5));  // mid-epoch
  EXPECT_EQ(read_text(policy.dir + "/latest"), "ckpt-e0001-s000000015.h5\n");
  EXPECT_EQ(CheckpointStore::resolve(policy.dir), second);
  const Checkpoint r = read_checkpoint(CheckpointStore::resolve(policy.dir));
  EXPECT_EQ(r.global_step, 15);
  EXPECT_EQ(r.batch_in_epoch, 5);
  // A file resolves to itself; no temporary files are left behind, only the store's lock.
  EXPECT_EQ(CheckpointStore::resolve(first), first);
  for (const std::string& name : directory_entries(policy.dir)) {
    EXPECT_TRUE(name[0] != '.' || name == ".lock") << name;
  }
}

TEST(CheckpointStore, KeepLastPrunesOlderCheckpointsOnly) {
  TempDir dir;
  CheckpointPolicy policy;
  policy.dir = dir.path();
  policy.keep_last = 2;
  policy.best_metric = "";
  CheckpointStore store(policy);
  test::write_file(dir.file("notes.h5"), {1, 2, 3});  // not ours: never pruned
  for (int64_t e = 1; e <= 4; ++e) store.save(at(e, e * 100));
  EXPECT_EQ(directory_entries(dir.path()),
            (std::set<std::string>{".lock", "ckpt-e0003-s000000300.h5", "ckpt-e0004-s000000400.h5",
                                   "latest", "notes.h5"}));
  // Step 1000 sorts after step 400 by its zero-padded name.
  store.save(at(4, 1000, 0, 7));
  EXPECT_EQ(directory_entries(dir.path()),
            (std::set<std::string>{".lock", "ckpt-e0004-s000000400.h5", "ckpt-e0004-s000001000.h5",
                                   "latest", "notes.h5"}));
  EXPECT_EQ(read_checkpoint(CheckpointStore::resolve(dir.path())).global_step, 1000);
}

TEST(CheckpointStore, ResolveErrors) {
  TempDir dir;
  expect_error([&] { CheckpointStore::resolve(dir.path()); }, {dir.path(), "no 'latest' pointer"});
  expect_error([&] { CheckpointStore::resolve(dir.file("gone")); },
               {dir.file("gone"), "does not exist"});
  std::ofstream(dir.file("latest")) << "\n";
  expect_error([&] { CheckpointStore::resolve(dir.path()); },
               {dir.file("latest"), "does not name a checkpoint"});
}

TEST(CheckpointStore, BestIsWrittenAtAnEpochBoundaryWhenBestEpochIsThisEpoch) {
  TempDir dir;
  CheckpointPolicy policy;
  policy.dir = dir.path();
  policy.keep_last = 1;
  CheckpointStore store(policy);
  EXPECT_TRUE(store.higher_is_better());  // val_top1
  store.save(at(1, 10, /*best_epoch=*/0));
  EXPECT_FALSE(fs::exists(dir.file("best.h5")));
  store.save(at(2, 20, /*best_epoch=*/2));
  ASSERT_TRUE(fs::exists(dir.file("best.h5")));
  EXPECT_EQ(read_checkpoint(dir.file("best.h5")).epoch, 2);
  store.save(at(3, 30, /*best_epoch=*/2));  // not better: best.h5 stays epoch 2
  EXPECT_EQ(read_checkpoint(dir.file("best.h5")).epoch, 2);
  store.save(at(3, 35, /*best_epoch=*/3, /*batch_in_epoch=*/5));  // mid-epoch: no best
  EXPECT_EQ(read_checkpoint(dir.file("best.h5")).epoch, 2);
  store.save(at(4, 40, /*best_epoch=*/4));
  EXPECT_EQ(read_checkpoint(dir.file("best.h5")).epoch, 4);
  // best.h5 is not a regular checkpoint: pruning to the last one leaves it.
  EXPECT_EQ(directory_entries(dir.path()),
            (std::set<std::string>{".lock", "best.h5", "ckpt-e0004-s000000040.h5", "latest"}));

  TempDir other;
  policy.dir = other.path();  // `store` holds the first directory
  policy.best_metric = "val_loss";
  EXPECT_FALSE(CheckpointStore(policy).higher_is_better());
  policy.best_metric = "";
  CheckpointStore no_best(policy);
  no_best.save(at(1, 10, 1));
  EXPECT_FALSE(fs::exists(other.file("best.h5")));
}

}  // namespace
}  // namespace residual
