// Models the CLI must refuse before any work: a classifier whose output is not one vector
// per sample (issue 8: it trained, evaluated nonsense, and `predict` died with SIGSEGV),
// and layer names that cannot be HDF5 path components (the run finished, the checkpoint
// did not load). Plus the working eval/predict path these checks must not block.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "tests/launch/cli_expect.h"
#include "tests/launch/train_test_util.h"

namespace residual::cli_test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The shared one-line error check, and no training done.
void expect_refused(const CliResult& r, const std::vector<std::string>& needles) {
  expect_error(r, needles, Output::kAllowed);  // train echoes its configuration first
  EXPECT_EQ(r.out.find("epoch "), std::string::npos) << "it trained anyway:\n" << r.out;
}

json layer(const std::string& name, const std::string& type, const std::vector<std::string>& in,
           json config = json::object()) {
  json l{{"name", name}, {"type", type}, {"config", std::move(config)}};
  if (!in.empty()) l["inputs"] = in;
  return l;
}

// input 8x8x1 -> conv1 (8x8x2) [-> flat -> fc (3)], with `output` as the model's output.
json small_model(const std::string& output, const std::string& conv_name = "conv1") {
  json layers = {layer("input", "Input", {}, {{"shape", {8, 8, 1}}}),
                 layer(conv_name, "Conv2D", {"input"},
                       {{"filters", 2}, {"kernel_size", 3}, {"padding", "same"}})};
  if (output != conv_name) {
    layers.push_back(layer("flat", "Flatten", {conv_name}));
    layers.push_back(layer("fc", "Dense", {"flat"}, {{"units", 3}}));
  }
  return {{"format", "residual-model"}, {"version", 1}, {"name", "small"},
          {"layers", layers},           {"outputs", {output}}};
}

std::string write_model(const TempDir& dir, const std::string& file, const json& model) {
  write_text(dir / file, model.dump(1));
  return (dir / file).string();
}

std::vector<std::string> train(const std::string& model, const fs::path& checkpoints) {
  return train_args({"--model", model, "--data", "synthetic:1x8x8:3", "--batch-size", "64",
                     "--threads", "2", "--epochs", "1", "--checkpoint-dir", checkpoints.string()});
}

// ---- the output of a classifier ----

TEST(CliClassifierOutputTest, TrainAndBenchRefuseAnImageOutputSummaryShowsIt) {
  TempDir dir;
  const std::string model = write_model(dir, "conv_out.json", small_model("conv1"));
  const std::vector<std::string> needles = {"'conv1' (Conv2D)", "8x8x2 per sample", "[classes]"};
  expect_refused(run_cli(train(model, dir / "run")), needles);
  EXPECT_FALSE(fs::exists(dir / "run"));
  expect_refused(run_cli({"bench", "--model", model, "--batch-size", "4", "--steps", "1",
                        "--threads", "2"}),
               needles);
  // summary and export-model show any graph.
  const CliResult summary = run_cli({"summary", "--model", model});
  EXPECT_EQ(summary.exit_code, 0) << describe(summary);
  EXPECT_NE(summary.out.find("conv1"), std::string::npos) << summary.out;
}

class CliInferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const CliResult r = run_cli(train(write_model(tmp_, "small.json", small_model("fc")), run_));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    checkpoint_ = (run_ / latest_name(run_)).string();
  }

  // The checkpoint of SetUp with its model cut back to end at conv1 (an image output), as
  // a run of an older residual, which did not check the output, could have left it.
  std::string image_output_checkpoint() const {
    Checkpoint c = read_checkpoint(checkpoint_);
    c.model = small_model("conv1");
    for (auto* tensors : {&c.parameters, &c.optimizer_state}) {
      for (auto it = tensors->begin(); it != tensors->end();) {
        it = it->first.rfind("fc/", 0) == 0 ? tensors->erase(it) : std::next(it);
      }
    }
    const std::string path = (tmp_ / "image_output.h5").string();
    write_checkpoint(path, c);
    return path;
  }

  TempDir tmp_;
  const fs::path run_ = tmp_ / "run";
  std::string checkpoint_;
};

TEST_F(CliInferenceTest, EvalAndPredictRefuseAnImageOutputInsteadOfCrashing) {
  const std::string bad = image_output_checkpoint();
  const std::vector<std::string> needles = {"'conv1' (Conv2D)", "8x8x2 per sample"};
  expect_refused(run_cli({"eval", "--checkpoint", bad}), needles);
  expect_refused(run_cli({"predict", "--checkpoint", bad, "-o", (tmp_ / "p.csv").string()}),
               needles);
  expect_refused(run_cli({"predict", "--checkpoint", bad, "-o", (tmp_ / "p.h5").string()}),
               needles);
  EXPECT_FALSE(fs::exists(tmp_ / "p.csv"));
  EXPECT_FALSE(fs::exists(tmp_ / "p.h5"));
}

TEST_F(CliInferenceTest, EvalAndPredictOfAClassifier) {
  const CliResult eval = run_cli({"eval", "--checkpoint", run_.string()});
  ASSERT_EQ(eval.exit_code, 0) << describe(eval);
  EXPECT_NE(eval.out.find("(1024 images)"), std::string::npos) << eval.out;
  const fs::path csv = tmp_ / "p.csv";
  const CliResult predict = run_cli({"predict", "--checkpoint", checkpoint_, "-o", csv.string()});
  ASSERT_EQ(predict.exit_code, 0) << describe(predict);
  const std::vector<std::string> rows = lines_of(read_text(csv));
  ASSERT_EQ(rows.size(), 1025u);  // a header and one row per test image
  EXPECT_EQ(rows[0], "index,label,predicted,p0,p1,p2");
}

// ---- layer names ----

TEST(CliLayerNameTest, NamesThatCannotBeCheckpointPathsAreRefusedBeforeTraining) {
  TempDir dir;
  for (const std::string name : {"x/kernel", "..", ""}) {
    const std::string model = write_model(dir, "m.json", small_model("fc", name));
    const std::string shown = "\"" + name + "\"";
    expect_refused(run_cli({"summary", "--model", model}), {"layer name " + shown, "A-Z a-z 0-9"});
    expect_refused(run_cli(train(model, dir / "run")), {"layer name " + shown});
    EXPECT_FALSE(fs::exists(dir / "run")) << name;
  }
}

}  // namespace
}  // namespace residual::cli_test
