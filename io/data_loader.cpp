#include "core/hash.h"
#include "io/data_loader.h"

#include <algorithm>
#include <exception>

#include "core/error.h"

namespace residual {
namespace {

// Fisher-Yates with our own generator, so the order is the same with any standard
// library (the modulo bias of a 64-bit draw is below 2^-40 for any real data set).
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t epoch, bool shuffle) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle) return order;
  uint64_t state = splitmix64(seed) ^ splitmix64(epoch + 0x51ed270bULL);
  for (int64_t i = n - 1; i > 0; --i) {
    state = splitmix64(state);
    const int64_t j = static_cast<int64_t>(state % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

}  // namespace

DataLoader::DataLoader(const Dataset& data, LoaderConfig config)
    : data_(data), config_(std::move(config)), sample_shape_(data.sample_shape()) {
  RESIDUAL_CHECK(config_.batch_size > 0, "batch size must be positive");
  RESIDUAL_CHECK(config_.world_size > 0 && config_.rank >= 0 && config_.rank < config_.world_size,
                 "rank ", config_.rank, " outside world size ", config_.world_size);
  const int64_t global = config_.batch_size;
  batches_ = config_.drop_last ? data_.size() / global : (data_.size() + global - 1) / global;
  RESIDUAL_CHECK(batches_ > 0, data_.description(), " has ", data_.size(),
                 " samples, fewer than one global batch of ", global);
  config_.workers = std::max(1, config_.workers);
  slots_.resize(static_cast<size_t>(std::max(config_.prefetch, config_.workers) + 1));
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::samples_per_epoch() const {
  int64_t total = 0;
  for (int64_t b = 0; b < batches_; ++b) {
    const auto [begin, end] = shard(b);
    total += end - begin;
  }
  return total;
}

int64_t DataLoader::global_size(int64_t batch_number) const {
  return std::min(config_.batch_size, data_.size() - batch_number * config_.batch_size);
}

std::pair<int64_t, int64_t> DataLoader::shard(int64_t batch_number) const {
  const int64_t size = global_size(batch_number);
  const int64_t start = batch_number * config_.batch_size;
  // Split as evenly as possible: the first size % world_size ranks get one more.
  const int64_t begin = start + size * config_.rank / config_.world_size;
  const int64_t end = start + size * (config_.rank + 1) / config_.world_size;
  return {begin, end};
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void DataLoader::start_epoch(uint64_t epoch, int64_t first_batch) {
  stop_workers();
  RESIDUAL_CHECK(first_batch >= 0 && first_batch <= batches_, "resume batch ", first_batch,
                 " outside the epoch's ", batches_, " batches");
  epoch_ = epoch;
  order_ = permutation(data_.size(), config_.seed, epoch, config_.shuffle);
  for (Slot& s : slots_) s.ready_for = -1;
  next_ = released_below_ = first_batch;
  stopping_ = false;
  error_ = nullptr;
  // The first batch is passed by value: a worker that starts late must not read next_,
  // which the consumer may already have advanced.
  for (int w = 0; w < config_.workers; ++w) {
    threads_.emplace_back(&DataLoader::worker, this, w, first_batch);
  }
}

void DataLoader::worker(int id, int64_t first_batch) {
  std::vector<float> scratch(static_cast<size_t>(sample_shape_.numel()));
  const int64_t depth = static_cast<int64_t>(slots_.size());
  for (int64_t b = first_batch + id; b < batches_; b += config_.workers) {
    Slot* slot = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Batch b may reuse its slot once batch b - depth has been handed out and released.
      changed_.wait(lock, [&] { return stopping_ || b < released_below_ + depth - 1; });
      if (stopping_) return;
      slot = &slots_[b % depth];
    }
    try {
      fill(b, slot->batch, scratch);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      stopping_ = true;
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slot->ready_for = b;
    }
    changed_.notify_all();
  }
}

void DataLoader::fill(int64_t batch_number, Batch& out, std::vector<float>& scratch) {
  const auto [begin, end] = shard(batch_number);
  const int64_t n = end - begin, pixels = sample_shape_.numel();
  out.images.resize(sample_shape_.with_batch(n), Device::cpu());  // read on the host
  out.labels.resize(Shape{n}, Device::cpu(), DType::kInt32);
  out.index = batch_number;
  out.global_size = global_size(batch_number);
  out.first_sample = begin - batch_number * config_.batch_size;
  data_.read_batch(order_.data() + begin, n, out.images.f32(), out.labels.data<int32_t>());
  const bool normalize = !config_.normalization.mean.empty();
  for (int64_t i = 0; i < n; ++i) {
    float* image = out.images.f32() + i * pixels;
    augment_sample(config_.augment, epoch_, order_[begin + i], sample_shape_, image,
                   scratch.data());
    if (normalize) normalize_sample(config_.normalization, sample_shape_, image);
  }
}

const Batch* DataLoader::next() {
  const int64_t depth = static_cast<int64_t>(slots_.size());
  std::unique_lock<std::mutex> lock(mutex_);
  // The batch handed out last time is released now.
  released_below_ = next_;
  changed_.notify_all();
  if (next_ >= batches_) return nullptr;
  changed_.wait(lock, [&] { return error_ || slots_[next_ % depth].ready_for == next_; });
  if (error_) std::rethrow_exception(error_);
  return &slots_[next_++ % depth].batch;
}

}  // namespace residual
