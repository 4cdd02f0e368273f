#include "distributed/reducer.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "ops/ops.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

Reducer::Reducer(std::vector<Parameter*> params, Communicator& comm, ReducerConfig config)
    : comm_(comm), views_(config.gradient_as_bucket_view) {
  RESIDUAL_CHECK(config.bucket_cap_bytes >= 4 && config.first_bucket_cap_bytes >= 4,
                 "bucket caps must hold at least one float");
  // Reverse order of use: backward produces the last layer's gradients first.
  std::reverse(params.begin(), params.end());
  int64_t filled = 0;
  for (Parameter* p : params) {
    const int64_t bytes = p->value.numel() * 4;
    // The bucket being filled is buckets_.back(): the first one has the small cap.
    const int64_t cap = buckets_.size() <= 1 ? config.first_bucket_cap_bytes : config.bucket_cap_bytes;
    // A parameter larger than the cap gets a bucket of its own.
    if (buckets_.empty() || (filled > 0 && filled + bytes > cap)) {
      buckets_.emplace_back();
      filled = 0;
    }
    Bucket& b = buckets_.back();
    b.slots.push_back({p, filled / 4});
    filled += bytes;
  }
  int64_t base = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    int64_t total = 0;
    for (size_t s = 0; s < b.slots.size(); ++s) {
      where_[b.slots[s].param] = {static_cast<int>(i), static_cast<int>(s)};
      total += b.slots[s].param->value.numel();
    }
    // On the gradients' device: a GPU's buckets are summed in place by NCCL.
    const Device device = b.slots[0].param->grad.device();
    for (const Slot& slot : b.slots) {
      RESIDUAL_CHECK(slot.param->grad.device() == device, "the gradients of '", b.slots[0].param->name,
                     "' and '", slot.param->name, "' are on ", device.str(), " and ",
                     slot.param->grad.device().str(), ": one device per model");
    }
    RESIDUAL_CHECK(device.is_cpu() || comm.size() == 1 || comm.takes_device_memory(),
                   "gradients on ", device.str(), " need a communicator that sums device memory "
                   "(NCCL: gradient_communicator(device)); this one sums host memory");
    b.buffer = Tensor::zeros(Shape{total}, device);
    if (config.gradient_as_bucket_view) {
      for (const Slot& slot : b.slots) {
        Tensor view = b.buffer.view_at(slot.offset, slot.param->grad.shape());
        view.copy_from(slot.param->grad);
        slot.param->grad = view;
      }
    }
    slot_base_.push_back(base);
    base += static_cast<int64_t>(b.slots.size());
  }
  reported_.assign(static_cast<size_t>(base), 0);
}

std::vector<int64_t> Reducer::bucket_sizes() const {
  std::vector<int64_t> sizes;
  for (const Bucket& b : buckets_) sizes.push_back(b.buffer.numel());
  return sizes;
}

void Reducer::begin_backward(bool first_of_step, bool communicate) {
  RESIDUAL_CHECK(next_launch_ == 0 || !communicate_, "a backward began before finalize() of the last step");
  RESIDUAL_CHECK(first_of_step || !views_, "gradient accumulation needs the reducer built "
                 "without gradient_as_bucket_view");
  first_of_step_ = first_of_step;
  communicate_ = communicate;
  std::fill(reported_.begin(), reported_.end(), 0);
  for (Bucket& b : buckets_) b.pending = static_cast<int64_t>(b.slots.size());
}

void Reducer::on_gradient_ready(Parameter& p) {
  const auto it = where_.find(&p);
  RESIDUAL_CHECK(it != where_.end(), "the gradient of '", p.name,
                 "' was reported, but the reducer was not built with it");
  const auto [bi, si] = it->second;
  Bucket& b = buckets_[static_cast<size_t>(bi)];
  char& reported = reported_[static_cast<size_t>(slot_base_[static_cast<size_t>(bi)] + si)];
  RESIDUAL_CHECK(!reported, "the gradient of '", p.name, "' was reported twice in one backward");
  reported = 1;
  // Not (or no longer) a view into the bucket: copy it in, or add it to what the earlier
  // backwards of this step left there. Through the tensor copy and the add op, so a GPU's
  // bucket is filled on its compute stream, in order with the kernels that wrote the
  // gradient (the add sums a + b per element in float, in place, on either device).
  Tensor dst = b.buffer.view_at(b.slots[static_cast<size_t>(si)].offset, p.grad.shape());
  if (p.grad.device_raw() != dst.device_raw()) {
    if (first_of_step_) {
      dst.copy_from(p.grad);
    } else {
      ops::add_forward({&dst, &p.grad}, false, dst);
    }
  }
  --b.pending;
  if (communicate_) launch_ready_buckets();
  // Drive the in-flight all-reduces: MPI progresses them only inside MPI calls.
  for (int i = 0; i < next_launch_; ++i) buckets_[static_cast<size_t>(i)].work->test();
}

void Reducer::launch_ready_buckets() {
  while (next_launch_ < static_cast<int>(buckets_.size()) &&
         buckets_[static_cast<size_t>(next_launch_)].pending == 0) {
    Bucket& b = buckets_[static_cast<size_t>(next_launch_)];
    if (next_launch_ == 0) first_launch_ = Clock::now();
    const std::string what = "gradient bucket " + std::to_string(next_launch_);
    b.work = comm_.all_reduce_async(b.buffer.device_f32(), b.buffer.numel(), what.c_str());
    ++next_launch_;
  }
}

void Reducer::finalize() {
  std::string missing;
  for (const Bucket& b : buckets_) {
    if (b.pending == 0) continue;
    for (const Slot& s : b.slots) {
      const auto [bi, si] = where_.at(s.param);
      if (!reported_[static_cast<size_t>(slot_base_[static_cast<size_t>(bi)] + si)]) {
        missing += (missing.empty() ? "" : ", ") + s.param->name;
      }
    }
  }
  // Identical on every rank (same graph), so every rank stops here: no one is left
  // waiting in a collective.
  RESIDUAL_CHECK(missing.empty(), "backward never reported the gradients of ", missing,
                 ": the reducer cannot complete the step");
  RESIDUAL_CHECK(communicate_, "finalize() after a backward that did not communicate");
  const auto wait_start = Clock::now();
  for (Bucket& b : buckets_) b.work->wait();
  const auto done = Clock::now();
  times_.exposed_ms = ms_between(wait_start, done);
  times_.all_reduce_ms = ms_between(first_launch_, done);
  for (Bucket& b : buckets_) {
    for (const Slot& s : b.slots) {
      // Nothing to copy for a view (copy_from skips a tensor onto itself). On a GPU the
      // copy is queued on the compute stream, which wait() made wait for the all-reduce.
      s.param->grad.copy_from(b.buffer.view_at(s.offset, s.param->grad.shape()));
    }
    b.work.reset();
  }
  next_launch_ = 0;
}

}  // namespace residual
