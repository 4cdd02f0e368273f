// `residual bench` on a tiny model: a few steps that must finish in well under a second.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/launch/cli_runner.h"

namespace residual::cli_test {
namespace {

TEST(CliBenchTest, TinyModelPrintsImagesPerSecondLast) {
  const std::string tiny = source_dir() / "models" / "tiny-cnn.json";
  const CliResult r = run_cli({"bench", "--model", tiny, "--batch-size", "4", "--steps", "2",
                               "--warmup", "1", "--threads", "1"});
  ASSERT_EQ(r.signal, 0) << describe(r);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;

  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines.back(), m, std::regex(R"(images_per_s=([0-9]+\.[0-9]+))")))
      << "last line: " << lines.back();
  EXPECT_GT(std::stod(m[1]), 0.0) << lines.back();

  ASSERT_GE(lines.size(), 3u) << r.out;
  const std::string& timings = lines[lines.size() - 3];
  const std::regex timings_line(
      R"(forward_ms=\S+ loss_ms=\S+ backward_ms=\S+ update_ms=\S+ step_ms=\S+)");
  EXPECT_TRUE(std::regex_match(timings, timings_line)) << timings;
  // The step's multiply-add FLOPs per image (3 x 2 x the forward MACs) and their rate.
  std::smatch g;
  const std::string& flops = lines[lines.size() - 2];
  ASSERT_TRUE(std::regex_match(
      flops, g, std::regex(R"(train_gflop_per_image=([0-9.e+-]+) gflops=([0-9]+\.[0-9]+))")))
      << flops;
  EXPECT_GT(std::stod(g[1]), 0.0) << flops;
  EXPECT_NEAR(std::stod(g[2]), std::stod(g[1]) * std::stod(m[1]), 0.06 + 0.01 * std::stod(g[2]))
      << flops << " at " << lines.back();
  EXPECT_NE(r.out.find("batch=4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("threads=1"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace residual::cli_test
