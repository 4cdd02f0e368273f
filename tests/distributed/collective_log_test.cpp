// The collective history every deadline and disagreement message shows, and the
// fingerprint the ranks compare once per step.
#include <gtest/gtest.h>

#include "distributed/communicator.h"

namespace residual {
namespace {

TEST(CollectiveLog, KeepsTheLastFewNewestLast) {
  CollectiveLog log;
  EXPECT_EQ(log.history(), "none");
  for (int i = 0; i < CollectiveLog::kHistory + 3; ++i) log.add(CollectiveKind::kAllReduce, 2048, "bucket");
  log.add(CollectiveKind::kBarrier, 0, "checkpoint");
  const std::string h = log.history();
  EXPECT_EQ(h.find("#1 "), std::string::npos) << h;
  EXPECT_NE(h.find("#12 barrier 0 B (checkpoint)"), std::string::npos) << h;
  EXPECT_NE(h.find("#5 all-reduce 2.0 KB (bucket)"), std::string::npos) << h;
}

TEST(CollectiveLog, FingerprintDependsOnKindSizeAndOrder) {
  auto fingerprint = [](std::vector<std::pair<CollectiveKind, int64_t>> ops) {
    CollectiveLog log;
    for (auto [k, b] : ops) log.add(k, b, "x");
    return log.take_fingerprint();
  };
  const auto a = fingerprint({{CollectiveKind::kAllReduce, 400}, {CollectiveKind::kBarrier, 0}});
  EXPECT_EQ(a, fingerprint({{CollectiveKind::kAllReduce, 400}, {CollectiveKind::kBarrier, 0}}));
  EXPECT_NE(a, fingerprint({{CollectiveKind::kAllReduce, 404}, {CollectiveKind::kBarrier, 0}}));
  EXPECT_NE(a, fingerprint({{CollectiveKind::kBarrier, 0}, {CollectiveKind::kAllReduce, 400}}));
  EXPECT_NE(a, fingerprint({{CollectiveKind::kAllReduce, 400}}));
  EXPECT_LT(a, 1u << 20);
}

TEST(CollectiveLog, TakingTheFingerprintRestartsIt) {
  CollectiveLog log;
  log.add(CollectiveKind::kAllReduce, 8, "x");
  log.take_fingerprint();
  EXPECT_EQ(log.take_fingerprint(), 0u);
}

}  // namespace
}  // namespace residual
