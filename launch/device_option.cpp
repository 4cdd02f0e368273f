#include "launch/device_option.h"

#include <cerrno>
#include <cstdlib>

#include "core/device_memory.h"
#include "core/error.h"
#include "distributed/job.h"
#include "distributed/nccl_communicator.h"

namespace residual {
namespace {

constexpr long kMaxCudaIndex = 1023;

struct Spelling {
  bool ok = false;
  Device device;
  bool any_index = false;  // "cuda": the index comes from the local rank
};

Spelling parse(const std::string& text) {
  Spelling s;
  if (text == "cpu") {
    s.ok = true;
  } else if (text == "cuda") {
    s = {true, Device::cuda(0), true};
  } else if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text[5] >= '0' && text[5] <= '9') {
    char* end = nullptr;
    errno = 0;
    const long index = std::strtol(text.c_str() + 5, &end, 10);
    if (*end == '\0' && errno == 0 && index <= kMaxCudaIndex) {
      s = {true, Device::cuda(static_cast<int>(index)), false};
    }
  }
  return s;
}

std::string visible_devices_note() {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  return visible ? str_cat("; CUDA_VISIBLE_DEVICES is '", visible, "'") : std::string();
}

}  // namespace

bool is_device_spelling(const std::string& text) { return parse(text).ok; }

Device resolve_device(const std::string& text) {
  const Spelling s = parse(text);
  RESIDUAL_CHECK(s.ok, "--device '", text, "' is not cpu, cuda or cuda:N");
  if (s.device.is_cpu()) return s.device;
  RESIDUAL_CHECK(cuda_compiled(), "--device ", text,
                 ": this residual was built without CUDA "
                 "(configure with a CUDA toolkit and -DRESIDUAL_ENABLE_CUDA=ON)");
  const int count = cuda_device_count();
  RESIDUAL_CHECK(count > 0, "--device ", text,
                 ": no CUDA GPU is visible (this residual was built "
                 "with CUDA; cuda_device_count() = 0",
                 visible_devices_note(), ")");
  RESIDUAL_CHECK(nccl_compiled() || world_communicator().size() == 1, "--device ", text,
                 ": this residual was built without NCCL, which several GPU ranks need to sum "
                 "their gradients (configure where NCCL is found; one rank needs none)");
  if (s.any_index) return Device::cuda(local_rank() % count);
  RESIDUAL_CHECK(s.device.index < count, "--device ", text, ": the CUDA GPUs visible here are ",
                 count == 1 ? std::string("cuda:0 only") : str_cat("cuda:0 to cuda:", count - 1),
                 visible_devices_note());
  return s.device;
}

}  // namespace residual
