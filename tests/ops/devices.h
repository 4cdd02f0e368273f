#pragma once
// The devices every op test runs on (DESIGN.md habit 6, ggml's test-backend-ops): one
// test body per case, instantiated for the CPU and each visible GPU, each result compared
// with the same host-side double reference. Inputs and references are built on the host;
// on(device, x) moves an input, and ref::matches copies a device result back to compare.
// An op without a kernel for a device skips with the reason instead of failing, so a
// CUDA kernel is tested the day it is registered.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "core/device.h"
#include "core/device_memory.h"
#include "core/tensor.h"
#include "ops/op.h"

namespace residual {

// gtest prints a device parameter as "cpu" / "cuda:0" rather than its bytes.
inline void PrintTo(const Device& device, std::ostream* out) { *out << device.str(); }

}  // namespace residual

namespace residual::op_test {

// The CPU, then cuda:i for every GPU this process sees.
inline std::vector<Device> op_test_devices() {
  std::vector<Device> devices{Device::cpu()};
  const int gpus = cuda_device_count();
  for (int i = 0; i < gpus; ++i) devices.push_back(Device::cuda(i));
  return devices;
}

// "cpu", "cuda0": a gtest parameter name (letters, digits and '_' only).
inline std::string device_name(Device device) {
  return device.is_cpu() ? std::string("cpu") : "cuda" + std::to_string(device.index);
}

// Name generator for suites parameterized by the device alone.
inline std::string device_param_name(const ::testing::TestParamInfo<Device>& info) {
  return device_name(info.param);
}

// A copy of the host tensor `host` on `device` (a copy on the CPU too, so every device
// gets an input that nothing else holds).
inline Tensor on(Device device, const Tensor& host) { return host.to(device); }

// Suites whose cases already had a parameter: (case, device). `case_name` names the case
// as the suite did before; the device is appended ("Shape2x3_cpu").
template <typename Case>
using WithDevice = std::tuple<Case, Device>;

template <typename Case, typename CaseName>
std::string with_device_name(const ::testing::TestParamInfo<WithDevice<Case>>& info,
                             CaseName case_name) {
  const ::testing::TestParamInfo<Case> case_info(std::get<0>(info.param), info.index);
  return case_name(case_info) + "_" + device_name(std::get<1>(info.param));
}

// `cases` (a gtest generator: Values, ValuesIn) paired with every op test device, for
// suites parameterized by WithDevice<Case>.
template <typename Generator>
auto with_every_device(Generator cases) {
  return ::testing::Combine(cases, ::testing::ValuesIn(op_test_devices()));
}

// Why `op` cannot run on `device`; empty when it can.
inline std::string missing_kernel(const ops::OpBase& op, Device device) {
  if (op.has_kernel(device.type)) return {};
  return std::string("no ") + (device.is_cpu() ? "cpu" : "cuda") + " kernel for " +
         op.name() + " yet";
}

// Why not every one of `ops` can run on `device` (the first missing kernel); empty when
// all can.
template <typename... Ops>
std::string missing_kernels(Device device, const Ops&... ops) {
  std::string why;
  ((why.empty() ? void(why = missing_kernel(ops, device)) : void()), ...);
  return why;
}

}  // namespace residual::op_test

// Skips the running test, with the reason, when `op` has no kernel for `device`.
#define SKIP_WITHOUT_KERNEL(op, device)                                                \
  do {                                                                                 \
    const std::string residual_missing_kernel_ =                                       \
        ::residual::op_test::missing_kernel((op), (device));                           \
    if (!residual_missing_kernel_.empty()) GTEST_SKIP() << residual_missing_kernel_;  \
  } while (false)

// The same for several ops: SKIP_WITHOUT_KERNELS(device, ops::a, ops::b, ...).
#define SKIP_WITHOUT_KERNELS(device, ...)                                               \
  do {                                                                                  \
    const std::string residual_missing_kernel_ =                                        \
        ::residual::op_test::missing_kernels((device), __VA_ARGS__);                    \
    if (!residual_missing_kernel_.empty()) GTEST_SKIP() << residual_missing_kernel_;   \
  } while (false)

// Instantiates `suite`, parameterized by Device alone, on every op test device.
#define INSTANTIATE_ON_OP_TEST_DEVICES(suite)                                           \
  INSTANTIATE_TEST_SUITE_P(Devices, suite,                                              \
                           ::testing::ValuesIn(::residual::op_test::op_test_devices()), \
                           ::residual::op_test::device_param_name)
