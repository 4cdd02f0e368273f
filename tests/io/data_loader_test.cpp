// The loader: every sample once per epoch, (seed, epoch) shuffling, k ranks covering
// exactly what one process sees, prefetch threads that neither hang nor reorder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <set>

#include "core/error.h"
#include "io/data_loader.h"
#include "io/synthetic_dataset.h"

namespace residual {
namespace {

// Runs fn with a deadline. A deadlocked loader cannot be cancelled, so the process ends
// with a failure message instead of hanging CTest.
template <typename Fn>
void within_seconds(int seconds, Fn fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: the loader did not finish in %d s (deadlock)\n", seconds);
    std::_Exit(1);
  }
  done.get();
}

// Labels of an epoch in order: with index % classes labels and classes >= size they
// identify the samples.
std::vector<int32_t> epoch_labels(DataLoader& loader, uint64_t epoch, int64_t first = 0) {
  std::vector<int32_t> out;
  loader.start_epoch(epoch, first);
  while (const Batch* b = loader.next()) {
    for (int64_t i = 0; i < b->labels.numel(); ++i) out.push_back(b->labels.data<int32_t>()[i]);
  }
  return out;
}

SyntheticDataset make_data(int64_t size) { return SyntheticDataset(Shape{4, 4, 1}, size, size, Split::kTrain); }

TEST(DataLoader, EveryBatchArrivesInOrderWithManyWorkers) {
  SyntheticDataset data = make_data(1000);
  for (int workers : {1, 2, 3, 5}) {
    for (int prefetch : {1, 2, 4}) {
      LoaderConfig c;
      c.batch_size = 7;
      c.shuffle = false;
      c.drop_last = false;
      c.workers = workers;
      c.prefetch = prefetch;
      DataLoader loader(data, c);
      within_seconds(20, [&] {
        const auto labels = epoch_labels(loader, 0);
        ASSERT_EQ(labels.size(), 1000u) << workers << " workers, prefetch " << prefetch;
        for (int32_t i = 0; i < 1000; ++i) ASSERT_EQ(labels[i], i);
      });
    }
  }
}

TEST(DataLoader, ShuffleIsAPermutationFixedBySeedAndEpoch) {
  SyntheticDataset data = make_data(500);
  LoaderConfig c;
  c.batch_size = 10;
  DataLoader loader(data, c);
  std::vector<int32_t> e0, e0_again, e1;
  within_seconds(20, [&] {
    e0 = epoch_labels(loader, 0);
    e1 = epoch_labels(loader, 1);
    e0_again = epoch_labels(loader, 0);
  });
  EXPECT_EQ(e0, e0_again);
  EXPECT_NE(e0, e1);
  std::set<int32_t> unique(e0.begin(), e0.end());
  EXPECT_EQ(unique.size(), 500u);
}

// Labels of an epoch, one vector per batch, and each batch's global size.
std::vector<std::vector<int32_t>> epoch_batches(DataLoader& loader, uint64_t epoch,
                                                std::vector<int64_t>* global_sizes = nullptr) {
  std::vector<std::vector<int32_t>> out;
  loader.start_epoch(epoch, 0);
  while (const Batch* b = loader.next()) {
    out.emplace_back(b->labels.data<int32_t>(), b->labels.data<int32_t>() + b->labels.numel());
    if (global_sizes) global_sizes->push_back(b->global_size);
  }
  return out;
}

// --batch-size is the global batch: k ranks together see exactly one process's batches,
// shares as equal as they can be (uneven when k does not divide the batch, empty when
// the batch is smaller than the world).
TEST(DataLoader, RanksSplitEachGlobalBatchExactly) {
  SyntheticDataset data = make_data(1003);
  for (int64_t global : {24, 7, 2}) {
    for (bool drop_last : {true, false}) {
      LoaderConfig single;
      single.batch_size = global;
      single.drop_last = drop_last;
      DataLoader one(data, single);
      std::vector<std::vector<int32_t>> reference;
      within_seconds(20, [&] { reference = epoch_batches(one, 4); });
      for (int world : {2, 3}) {
        std::vector<std::vector<std::vector<int32_t>>> per_rank(world);
        std::vector<int64_t> sizes;
        for (int r = 0; r < world; ++r) {
          LoaderConfig c = single;
          c.rank = r;
          c.world_size = world;
          DataLoader loader(data, c);
          within_seconds(20, [&] { per_rank[r] = epoch_batches(loader, 4, r == 0 ? &sizes : nullptr); });
          ASSERT_EQ(loader.batches_per_epoch(), one.batches_per_epoch());
        }
        for (size_t k = 0; k < reference.size(); ++k) {
          std::vector<int32_t> merged;
          size_t smallest = reference[k].size(), largest = 0;
          for (int r = 0; r < world; ++r) {
            merged.insert(merged.end(), per_rank[r][k].begin(), per_rank[r][k].end());
            smallest = std::min(smallest, per_rank[r][k].size());
            largest = std::max(largest, per_rank[r][k].size());
          }
          ASSERT_EQ(merged, reference[k]) << "batch " << k << ", global " << global << ", " << world << " ranks";
          EXPECT_LE(largest - smallest, 1u) << "shares differ by more than one sample";
          EXPECT_EQ(sizes[k], static_cast<int64_t>(reference[k].size()));
        }
      }
    }
  }
}

TEST(DataLoader, ResumeMidEpochContinuesTheSameOrder) {
  SyntheticDataset data = make_data(300);
  LoaderConfig c;
  c.batch_size = 16;
  DataLoader loader(data, c);
  std::vector<int32_t> full, rest;
  within_seconds(20, [&] {
    full = epoch_labels(loader, 2);
    rest = epoch_labels(loader, 2, 5);
  });
  ASSERT_EQ(rest.size() + 5 * 16, full.size());
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), full.begin() + 5 * 16));
}

TEST(DataLoader, RestartingMidEpochDoesNotHang) {
  SyntheticDataset data = make_data(2000);
  LoaderConfig c;
  c.batch_size = 4;
  DataLoader loader(data, c);
  within_seconds(20, [&] {
    for (int round = 0; round < 20; ++round) {
      loader.start_epoch(round);
      for (int i = 0; i < round % 5; ++i) ASSERT_NE(loader.next(), nullptr);
    }
  });
}

TEST(DataLoader, TooFewSamplesForOneBatchIsAClearError) {
  SyntheticDataset data = make_data(5);
  LoaderConfig c;
  c.batch_size = 8;
  EXPECT_THROW(DataLoader loader(data, c), Error);
}

}  // namespace
}  // namespace residual
