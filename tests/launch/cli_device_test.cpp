// --device of train, eval, predict and bench: a misspelling is a parse error; a device this
// process cannot use (no GPU here, the CI case) is one error line before anything is
// written; the device is not part of a run (a checkpoint does not record it, a resumed
// run may be given another). On a GPU: a run trained there resumes on the CPU and the
// reverse, with checkpoints of one format. GPU tests skip with the reason where there is
// no GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "io/checkpoint.h"
#include "tests/launch/cli_expect.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;

// The small resnet20 run on 64 synthetic images: 2 steps of 32 per epoch.
std::vector<std::string> two_step_run(const fs::path& dir, const std::string& device,
                                      const std::string& epochs = "1") {
  return train_args(concat(small_run_args(), {"--synthetic-size", "64", "--epochs", epochs,
                                            "--checkpoint-dir", dir.string(), "--device", device}));
}

void run_ok(const std::vector<std::string>& args) {
  const CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
}

std::string no_device_reason() {
  return cuda_compiled() ? "no CUDA GPU is visible" : "this residual was built without CUDA";
}

#define SKIP_WITHOUT_A_GPU()    \
  if (cuda_device_count() == 0) \
  GTEST_SKIP() << "no CUDA device: cuda_device_count() = 0; the GPU round trip ran nowhere"

TEST(CliDevice, AMisspelledDeviceIsAParseErrorOfEveryCommand) {
  const std::vector<std::vector<std::string>> commands = computing_commands();
  for (const auto& command : commands) {
    for (const std::string bad :
         {"gpu", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda:0x", "cuda:99999"}) {
      SCOPED_TRACE(command[0] + " --device " + bad);
      expect_parse_error(run_cli(concat(command, {"--device", bad})),
                         {"--device", "'" + bad + "' is not cpu, cuda or cuda:N"});
    }
  }
}

// Every command, every CUDA spelling, from the command line or a --config file: one line
// naming the option and why, a non-zero exit, no output and no file or directory made.
TEST(CliDevice, CudaWithoutAGpuIsOneLineAndWritesNothing) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "this machine has a CUDA device";
  for (const std::string device : {"cuda", "cuda:0", "cuda:3"}) {
    TempDir tmp;
    const std::string ck = (tmp / "ck").string();
    const std::vector<std::vector<std::string>> commands = {
        train_args({"--model", tiny_cnn_model(), "--data", "synthetic:1x28x28:10",
                    "--checkpoint-dir", ck, "--metrics-file", ck + "/m.csv", "--device", device}),
        train_args({"--resume", ck, "--device", device}),
        {"eval", "--checkpoint", ck, "--device", device},
        {"predict", "--checkpoint", ck, "-o", (tmp / "p.csv").string(), "--device", device},
        {"bench", "--model", tiny_cnn_model(), "--batch-size", "2", "--device", device},
        {"bench", "--all-reduce-mb", "1", "--device", device}};
    for (const auto& command : commands) {
      SCOPED_TRACE(command[0] + " " + command[1] + " --device " + device);
      expect_error(run_cli(command), {"--device " + device + ": ", no_device_reason()});
      EXPECT_TRUE(tmp.entries().empty()) << describe_listing(tmp.path());
    }
  }
  TempDir config_dir, tmp;
  write_text(config_dir / "run.toml",
             "device = \"cuda\"\ncheckpoint-dir = \"" + (tmp / "ck").string() + "\"\n");
  expect_error(run_cli(train_args({"--model", tiny_cnn_model(), "--data", "synthetic:1x28x28:10",
                                   "--config", (config_dir / "run.toml").string()})),
               {"--device cuda: ", no_device_reason()});
  EXPECT_TRUE(tmp.entries().empty()) << describe_listing(tmp.path());
}

// The device says where a run computes, not what: checkpoints do not record it, and a
// resumed run takes --device like --threads.
TEST(CliDevice, CheckpointsDoNotRecordTheDeviceAndAResumeMayNameOne) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(run_ok(two_step_run(tmp / "ck", "cpu")));
  const Checkpoint c = read_checkpoint((tmp / "ck" / latest_name(tmp / "ck")).string());
  EXPECT_FALSE(c.config.contains("device")) << c.config.dump();
  EXPECT_EQ(c.global_step, 2);
  ASSERT_NO_FATAL_FAILURE(run_ok(train_args(
      {"--resume", (tmp / "ck").string(), "--epochs", "2", "--device", "cpu", "--threads", "2"})));
  EXPECT_EQ(latest_name(tmp / "ck"), "ckpt-e0002-s000000004.h5");
}

// Both checkpoints hold the same tensors (names and shapes) and agree in value to 1e-3 of
// each tensor's norm: two steps in float32 on two devices differ only by summation order
// (~1e-6 relative per op, 1e-4 over the network); tests/launch/train_step_device_test.cpp
// checks one step tightly, this checks the round trip and the file format.
void expect_close_checkpoints(const std::string& a_file, const std::string& b_file) {
  const Checkpoint a = read_checkpoint(a_file), b = read_checkpoint(b_file);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.global_step, b.global_step);
  EXPECT_EQ(a.optimizer_steps, b.optimizer_steps);
  for (auto group : {&Checkpoint::parameters, &Checkpoint::buffers, &Checkpoint::optimizer_state}) {
    const auto& ta = a.*group;
    const auto& tb = b.*group;
    ASSERT_EQ(ta.size(), tb.size());
    for (const auto& [name, x] : ta) {
      const auto it = tb.find(name);
      ASSERT_NE(it, tb.end()) << name;
      const Tensor& y = it->second;
      ASSERT_EQ(x.shape(), y.shape()) << name;
      double off = 0, size = 0;
      for (int64_t i = 0; i < x.numel(); ++i) {
        const double d = static_cast<double>(x.f32()[i]) - y.f32()[i];
        off += d * d;
        size += static_cast<double>(y.f32()[i]) * y.f32()[i];
      }
      EXPECT_LE(std::sqrt(off), 1e-3 * std::sqrt(size) + 1e-7) << name;
    }
  }
}

// "eval ...\n  loss L  top1 ..." -> L
double eval_loss(const CliResult& r) {
  const size_t at = r.out.find("  loss ");
  return at == std::string::npos ? std::nan("") : std::atof(r.out.c_str() + at + 7);
}

TEST(CliDeviceGpu, TrainedOnCudaResumesOnCpuAndTheReverse) {
  SKIP_WITHOUT_A_GPU();
  TempDir tmp;
  const fs::path gpu = tmp / "gpu", cpu = tmp / "cpu";
  ASSERT_NO_FATAL_FAILURE(run_ok(two_step_run(gpu, "cuda")));
  ASSERT_NO_FATAL_FAILURE(run_ok(two_step_run(cpu, "cpu")));
  const std::string first = "ckpt-e0001-s000000002.h5";
  ASSERT_EQ(latest_name(gpu), first);
  ASSERT_EQ(latest_name(cpu), first);
  expect_close_checkpoints((gpu / first).string(), (cpu / first).string());

  // Each continues on the other device, from its own checkpoint.
  ASSERT_NO_FATAL_FAILURE(run_ok(train_args(
      {"--resume", gpu.string(), "--epochs", "2", "--device", "cpu", "--threads", "2"})));
  ASSERT_NO_FATAL_FAILURE(run_ok(train_args(
      {"--resume", cpu.string(), "--epochs", "2", "--device", "cuda:0", "--threads", "2"})));
  const std::string second = "ckpt-e0002-s000000004.h5";
  ASSERT_EQ(latest_name(gpu), second);
  ASSERT_EQ(latest_name(cpu), second);
  expect_close_checkpoints((gpu / second).string(), (cpu / second).string());

  // Evaluation and prediction of one checkpoint on either device.
  const std::string ck = (gpu / second).string();
  const CliResult on_gpu = run_cli({"eval", "--checkpoint", ck, "--device", "cuda"});
  const CliResult on_cpu = run_cli({"eval", "--checkpoint", ck, "--device", "cpu"});
  ASSERT_EQ(on_gpu.exit_code, 0) << describe(on_gpu);
  ASSERT_EQ(on_cpu.exit_code, 0) << describe(on_cpu);
  EXPECT_NEAR(eval_loss(on_gpu), eval_loss(on_cpu), 1e-3) << on_gpu.out << on_cpu.out;
  const fs::path p_gpu = tmp / "gpu.csv", p_cpu = tmp / "cpu.csv";
  ASSERT_NO_FATAL_FAILURE(
      run_ok({"predict", "--checkpoint", ck, "-o", p_gpu.string(), "--device", "cuda"}));
  ASSERT_NO_FATAL_FAILURE(run_ok({"predict", "--checkpoint", ck, "-o", p_cpu.string()}));
  const std::vector<std::string> rows_gpu = lines_of(read_text(p_gpu)),
                                 rows_cpu = lines_of(read_text(p_cpu));
  ASSERT_EQ(rows_gpu.size(), rows_cpu.size());
  EXPECT_EQ(rows_gpu.size(), 65u);  // a header and 64 test images
}

TEST(CliDeviceGpu, BenchRunsOnCuda) {
  SKIP_WITHOUT_A_GPU();
  const CliResult r = run_cli({"bench", "--model", "resnet20", "--batch-size", "32", "--steps", "2",
                               "--warmup", "1", "--device", "cuda"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("device=cuda:0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("images_per_s="), std::string::npos) << r.out;
}

}  // namespace
}  // namespace residual::cli_test
