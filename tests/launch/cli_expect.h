#pragma once
// What a refused command line must look like, shared by the CLI error tests.
#include <filesystem>
#include <string>
#include <vector>

#include "tests/launch/cli_runner.h"

namespace residual::cli_test {

enum class Output { kNone, kAllowed };

// A library error: no crash, a non-zero exit, nothing on standard output (unless allowed:
// `train` echoes its configuration before it opens the data) and exactly one line
// "residual: error: ..." on standard error containing every `needle`.
void expect_error(const CliResult& r, const std::vector<std::string>& needles,
                  Output output = Output::kNone);

// A command-line parse error, reported by CLI11 itself: its message (containing every
// `needle`) and at most its "Run with --help" hint, nothing on standard output.
void expect_parse_error(const CliResult& r, const std::vector<std::string>& needles);
inline void expect_parse_error(const CliResult& r, const char* needle) {
  expect_parse_error(r, std::vector<std::string>{needle});
}

// Writes models/<model> with its first `from` replaced by `to` to `target`; a test failure
// if `from` is not in it.
void write_edited_model(const std::string& model, const std::string& from, const std::string& to,
                        const std::filesystem::path& target);

}  // namespace residual::cli_test
