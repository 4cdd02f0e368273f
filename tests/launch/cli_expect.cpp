#include "tests/launch/cli_expect.h"

#include <gtest/gtest.h>

namespace residual::cli_test {
namespace {

constexpr char kErrorPrefix[] = "residual: error: ";

void expect_contains(const std::string& line, const std::vector<std::string>& needles) {
  for (const std::string& needle : needles) {
    EXPECT_NE(line.find(needle), std::string::npos) << "'" << needle << "' not in: " << line;
  }
}

}  // namespace

void expect_error(const CliResult& r, const std::vector<std::string>& needles, Output output) {
  ASSERT_EQ(r.signal, 0) << describe(r);
  EXPECT_NE(r.exit_code, 0) << describe(r);
  if (output == Output::kNone) {
    EXPECT_EQ(r.out, "") << describe(r);
  }
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << describe(r);
  EXPECT_EQ(lines[0].rfind(kErrorPrefix, 0), 0u) << lines[0];
  EXPECT_EQ(r.err.back(), '\n');
  expect_contains(lines[0], needles);
}

void expect_parse_error(const CliResult& r, const std::vector<std::string>& needles) {
  ASSERT_EQ(r.signal, 0) << describe(r);
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_GE(lines.size(), 1u) << describe(r);
  ASSERT_LE(lines.size(), 2u) << describe(r);
  EXPECT_EQ(lines[0].find("residual: error"), std::string::npos) << lines[0];
  expect_contains(lines[0], needles);
  if (lines.size() == 2) {
    EXPECT_EQ(lines[1], "Run with --help for more information.");
  }
}

void write_edited_model(const std::string& model, const std::string& from, const std::string& to,
                        const std::filesystem::path& target) {
  std::string text = read_text(source_dir() / "models" / model);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "'" << from << "' not in models/" << model;
  text.replace(at, from.size(), to);
  write_text(target, text);
}

}  // namespace residual::cli_test
