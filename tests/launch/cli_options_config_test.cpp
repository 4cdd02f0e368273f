// `residual train --config FILE` (issue 8: the file was silently ignored): TOML or INI,
// keys named as the long options, top-level or under [train]; the command line wins;
// every mistake in the file is one line naming the file and, where there is one, the line
// and the key.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/launch/cli_expect.h"
#include "tests/launch/cli_runner.h"

namespace residual::cli_test {
namespace {

std::vector<std::string> train_with(const std::filesystem::path& config,
                                    std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"train", "--config", config.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A fast run: a tiny model on synthetic data, one epoch, a constant learning rate (so the
// epoch line shows the rate the file gave).
std::string fast_run_keys() {
  return "model = \"" + (source_dir() / "models" / "tiny-cnn.json").string() +
         "\"\n"
         "data = \"synthetic:1x28x28:10\"\n"
         "epochs = 1\n"
         "threads = 1\n"
         "no-progress = true\n"
         "lr-schedule = \"constant\"\n";
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

void expect_success(const CliResult& r) {
  ASSERT_EQ(r.signal, 0) << describe(r);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
}

TEST(CliConfigFileTest, TomlValuesAreUsed) {
  TempDir dir;
  write_text(dir / "run.toml", fast_run_keys() + "lr = 0.05   # a comment\nbatch-size = 64\n");
  const CliResult r = run_cli(train_with(dir / "run.toml"), 60);
  expect_success(r);
  EXPECT_TRUE(has_line(r.out, "lr=0.05")) << r.out;
  EXPECT_TRUE(has_line(r.out, "batch-size=64")) << r.out;
  EXPECT_NE(r.out.find(" lr 0.05 "), std::string::npos) << r.out;  // the epoch line
}

TEST(CliConfigFileTest, IniTrainSectionAndTopLevelKeysAreUsed) {
  TempDir dir;
  write_text(dir / "run.ini", fast_run_keys() +
                                  "; INI comment\n[train]\nlr=0.05\nbatch_size=64\n"
                                  "mean=[33.3]\nstd = [78.6]\n");
  const CliResult r = run_cli(train_with(dir / "run.ini"), 60);
  expect_success(r);
  EXPECT_TRUE(has_line(r.out, "lr=0.05")) << r.out;
  EXPECT_TRUE(has_line(r.out, "batch-size=64")) << r.out;
  EXPECT_TRUE(has_line(r.out, "mean=33.3")) << r.out;
}

TEST(CliConfigFileTest, CommandLineOverridesTheFile) {
  TempDir dir;
  write_text(dir / "run.toml", fast_run_keys() + "lr = 0.05\nbatch-size = 64\n");
  const CliResult r = run_cli(train_with(dir / "run.toml", {"--lr", "0.02"}), 60);
  expect_success(r);
  EXPECT_TRUE(has_line(r.out, "lr=0.02")) << r.out;
  EXPECT_TRUE(has_line(r.out, "batch-size=64")) << r.out;
}

TEST(CliConfigFileTest, TheEchoedConfigurationReadsBackTheSame) {
  TempDir dir;
  write_text(dir / "run.toml", fast_run_keys() + "lr = 0.05\nlr-milestones = [3, 5]\n");
  const CliResult first = run_cli(train_with(dir / "run.toml"), 60);
  expect_success(first);
  const std::string echo = first.out.substr(0, first.out.find("\nmodel "));
  write_text(dir / "echo.toml", echo + "\n");
  const CliResult second = run_cli(train_with(dir / "echo.toml"), 60);
  expect_success(second);
  EXPECT_EQ(second.out.substr(0, second.out.find("\nmodel ")), echo);
}

TEST(CliConfigFileTest, GarbageNamesFileAndLine) {
  TempDir dir;
  write_text(dir / "bad.toml", "lr = 0.05\nthis is not a config line\n");
  expect_error(run_cli(train_with(dir / "bad.toml"), 20), {(dir / "bad.toml").string(), "line 2"});
  write_text(dir / "binary.toml", std::string("\x7f"
                                              "ELF\x02\x01\x01\0\0\0",
                                              10));
  expect_error(run_cli(train_with(dir / "binary.toml"), 20), {(dir / "binary.toml").string()});
  write_text(dir / "open.toml", "lr-milestones = [3, 5\n");
  expect_error(run_cli(train_with(dir / "open.toml"), 20),
               {(dir / "open.toml").string(), "line 1"});
}

TEST(CliConfigFileTest, UnknownKeySuggestsTheNearOption) {
  TempDir dir;
  write_text(dir / "typo.toml", "lr = 0.05\nbatch-sise = 64\n");
  expect_error(run_cli(train_with(dir / "typo.toml"), 20),
               {(dir / "typo.toml").string(), "line 2", "'batch-sise'", "'batch-size'"});
  write_text(dir / "alien.toml", "frobnicate = 1\n");
  expect_error(run_cli(train_with(dir / "alien.toml"), 20),
               {(dir / "alien.toml").string(), "line 1", "'frobnicate'"});
  // --config and --help are not settings.
  write_text(dir / "nested.toml", "config = \"other.toml\"\n");
  expect_error(run_cli(train_with(dir / "nested.toml"), 20), {"line 1", "'config'"});
}

TEST(CliConfigFileTest, UnknownSectionIsRefused) {
  TempDir dir;
  write_text(dir / "eval.ini", "[eval]\nbatch-size = 64\n");
  expect_error(run_cli(train_with(dir / "eval.ini"), 20),
               {(dir / "eval.ini").string(), "line 1", "[eval]", "[train]"});
}

TEST(CliConfigFileTest, ValuesOutOfRangeAreRefusedLikeOptions) {
  TempDir dir;
  write_text(dir / "neg.toml", "lr = 0.05\n\nbatch-size = -4\n");
  expect_error(run_cli(train_with(dir / "neg.toml"), 20),
               {(dir / "neg.toml").string(), "line 3", "--batch-size", "'-4'", "[1, 65536]"});
  write_text(dir / "word.toml", "momentum = \"fast\"\n");
  expect_error(run_cli(train_with(dir / "word.toml"), 20), {"line 1", "--momentum", "'fast'"});
  write_text(dir / "choice.toml", "optimizer = \"lbfgs\"\n");
  expect_error(run_cli(train_with(dir / "choice.toml"), 20), {"line 1", "--optimizer", "lbfgs"});
  write_text(dir / "twice.toml", "lr = 0.05\n[train]\nlr = 0.01\n");
  expect_error(run_cli(train_with(dir / "twice.toml"), 20), {"line 3", "'lr'", "line 1"});
}

TEST(CliConfigFileTest, MissingFileDirectoryAndSpecialFilesAreRefused) {
  TempDir dir;
  expect_error(run_cli(train_with(dir / "none.toml"), 20),
               {(dir / "none.toml").string(), "does not exist"});
  expect_error(run_cli(train_with(dir.path()), 20), {dir.path().string(), "directory"});
  expect_error(run_cli(train_with("/dev/zero"), 20), {"/dev/zero", "not a regular file"});
  ASSERT_EQ(mkfifo((dir / "fifo").c_str(), 0600), 0);
  expect_error(run_cli(train_with(dir / "fifo"), 20), {(dir / "fifo").string(), "FIFO"});
}

}  // namespace
}  // namespace residual::cli_test
