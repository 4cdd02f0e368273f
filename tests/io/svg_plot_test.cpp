#include "io/svg_plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "io_test_util.h"
#include "io/atomic_file.h"
#include "io/metrics_writer.h"

namespace residual {
namespace {

using Metrics = std::map<std::string, std::vector<double>>;
using test::expect_error;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Checks the document is well-formed enough for an XML parser: one root, every start tag
// closed in order, quoted attributes, no raw '<' or stray '&' in text. Returns an empty
// string when it is, else what is wrong.
std::string xml_problem(const std::string& doc) {
  std::vector<std::string> open;
  size_t i = 0, roots = 0;
  auto check_text = [](const std::string& text) -> std::string {
    for (size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '<') return "raw '<' in text";
      if (text[k] == '&') {
        const size_t semi = text.find(';', k);
        if (semi == std::string::npos) return "'&' without ';'";
        const std::string ent = text.substr(k, semi - k + 1);
        if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" &&
            ent != "&apos;") {
          return "unknown entity " + ent;
        }
      }
    }
    return "";
  };
  while (i < doc.size()) {
    const size_t lt = doc.find('<', i);
    const std::string text = doc.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    if (const std::string p = check_text(text); !p.empty()) return p;
    if (open.empty() && text.find_first_not_of(" \t\r\n") != std::string::npos) {
      return "text outside the root element";
    }
    if (lt == std::string::npos) break;
    if (doc.compare(lt, 5, "<?xml") == 0) {
      if (lt != 0) return "XML declaration not at the start";
      const size_t end = doc.find("?>", lt);
      if (end == std::string::npos) return "unterminated XML declaration";
      i = end + 2;
      continue;
    }
    if (doc.compare(lt, 4, "<!--") == 0) {
      const size_t end = doc.find("-->", lt);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    // Scan the tag, honouring quoted attribute values.
    size_t k = lt + 1;
    char quote = 0;
    for (; k < doc.size(); ++k) {
      if (quote) {
        if (doc[k] == quote) quote = 0;
        else if (doc[k] == '<') return "raw '<' in an attribute";
      } else if (doc[k] == '"' || doc[k] == '\'') {
        quote = doc[k];
      } else if (doc[k] == '>') {
        break;
      }
    }
    if (k >= doc.size()) return "unterminated tag";
    const std::string tag = doc.substr(lt + 1, k - lt - 1);
    i = k + 1;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1, tag.find_first_of(" \t\n", 1) - 1);
      if (open.empty() || open.back() != name) {
        return "closing </" + name + "> does not match <" + (open.empty() ? "" : open.back()) + ">";
      }
      open.pop_back();
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
    if (name.empty()) return "tag without a name";
    if (open.empty()) {
      if (++roots > 1) return "more than one root element";
    }
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (roots != 1) return "no root element";
  return "";
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// Paths of the data series (the legend's samples are <line>s).
size_t series_paths(const std::string& svg) { return count(svg, "<g class=\"series\""); }

bool has_series(const std::string& svg, const std::string& label) {
  return svg.find("<g class=\"series\" data-label=\"" + label + "\">\n<path d=\"M") !=
         std::string::npos;
}

// As the trainer writes them: per-step rows (NaN in the val_* columns) then an epoch row.
Metrics run_metrics(int epochs, int steps_per_epoch, int log_every, bool top5) {
  Metrics m;
  int step = 0;
  for (int e = 1; e <= epochs; ++e) {
    for (int s = 1; s <= steps_per_epoch; ++s) {
      ++step;
      if (s % log_every != 0) continue;
      m["epoch"].push_back(e);
      m["step"].push_back(step);
      m["lr"].push_back(0.1);
      m["train_loss"].push_back(2.3 / (1 + 0.01 * step));
      m["train_top1"].push_back(0.1 + 0.8 * step / (step + 100.0));
      for (const char* c : {"val_loss", "val_top1", "val_top5", "images_per_s", "seconds"}) {
        m[c].push_back(kNaN);
      }
    }
    m["epoch"].push_back(e);
    m["step"].push_back(step);
    m["lr"].push_back(0.1);
    m["train_loss"].push_back(2.0 / e);
    m["train_top1"].push_back(0.5 + 0.1 * e);
    m["val_loss"].push_back(2.2 / e);
    m["val_top1"].push_back(0.45 + 0.1 * e);
    m["val_top5"].push_back(top5 ? 0.9 : kNaN);
    m["images_per_s"].push_back(1000);
    m["seconds"].push_back(10);
  }
  return m;
}

TEST(SvgPlot, EpochCurvesHaveSeriesLegendAxesAndAreWellFormed) {
  PlotOptions o;
  o.title = "Learning curves: run.csv";
  const std::string svg = render_learning_curves_svg(run_metrics(5, 20, 10, true), o);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find(">Learning curves: run.csv</text>"), std::string::npos);
  for (const char* label : {"train loss", "val loss", "train top1", "val top1", "val top5"}) {
    EXPECT_TRUE(has_series(svg, label)) << label;
    EXPECT_NE(svg.find(std::string(">") + label + "</text>"), std::string::npos)
        << "legend lacks " << label;
  }
  EXPECT_EQ(series_paths(svg), 5u);
  // Per-step rows are not drawn against epochs.
  EXPECT_EQ(svg.find("(per step)"), std::string::npos);
  // Axis labels and panel titles.
  EXPECT_EQ(count(svg, "class=\"x-label\""), 2u);
  EXPECT_NE(svg.find(">epoch</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">accuracy (%)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Accuracy</text>"), std::string::npos);
  // Tick labels: whole epochs 1..5 on the x axes.
  for (const char* tick : {">1</text>", ">3</text>", ">5</text>"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  for (size_t at = svg.find("class=\"x-ticks\""); at != std::string::npos;
       at = svg.find("class=\"x-ticks\"", at + 1)) {
    const std::string x_ticks = svg.substr(at, svg.find("</g>", at) - at);
    EXPECT_EQ(x_ticks.find(".5</text>"), std::string::npos) << "fractional epoch ticks";
  }
  // Best held-out accuracy in the subtitle: 0.95 at epoch 5.
  EXPECT_NE(svg.find("best val top1 95.00% (epoch 5)"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(SvgPlot, StepAxisAddsThinPerStepLines) {
  PlotOptions o;
  o.x = "step";
  const std::string svg = render_learning_curves_svg(run_metrics(3, 40, 10, false), o);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_TRUE(has_series(svg, "train loss (per step)"));
  EXPECT_TRUE(has_series(svg, "train top1 (per step)"));
  EXPECT_TRUE(has_series(svg, "val loss"));
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  // val_top5 is all NaN: no series and no legend entry.
  EXPECT_EQ(svg.find("val top5"), std::string::npos);
  EXPECT_EQ(series_paths(svg), 6u);
  // The per-step line has 12 points: one M and 11 L.
  const size_t at = svg.find("data-label=\"train loss (per step)\"");
  const size_t end = svg.find("\"", svg.find("d=\"", at) + 3);
  EXPECT_EQ(count(svg.substr(at, end - at), " L"), 11u);
  EXPECT_NE(svg.find("stroke-width=\"1.0\""), std::string::npos);
}

TEST(SvgPlot, SingleEpoch) {
  Metrics m = run_metrics(1, 10, 100, false);  // one epoch row, no step rows
  ASSERT_EQ(m["epoch"].size(), 1u);
  const std::string svg = render_learning_curves_svg(m, PlotOptions{});
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_TRUE(has_series(svg, "train loss"));
  EXPECT_TRUE(has_series(svg, "val top1"));
  EXPECT_NE(svg.find("<circle"), std::string::npos);  // a lone point is visible
  EXPECT_NE(svg.find("1 epoch "), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(SvgPlot, NaNValuesBreakTheLineAndMissingAccuracyIsNoted) {
  Metrics m;
  m["epoch"] = {1, 2, 3, 4};
  m["train_loss"] = {2.0, kNaN, 1.0, 0.8};
  m["val_loss"] = {2.1, 1.5, 1.2, 1.0};
  const std::string svg = render_learning_curves_svg(m, PlotOptions{});
  EXPECT_EQ(xml_problem(svg), "");
  // train_loss: a lone point at epoch 1, then a segment from 3 to 4.
  const size_t at = svg.find("data-label=\"train loss\"");
  ASSERT_NE(at, std::string::npos);
  const std::string d = svg.substr(at, svg.find("/>", at) - at);
  EXPECT_EQ(count(d, "M"), 2u) << d;
  EXPECT_EQ(count(d, " L"), 1u) << d;
  EXPECT_NE(svg.find("no accuracy values"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(SvgPlot, ResumedRunKeepsTheLastRowForAnEpoch) {
  Metrics m;
  m["epoch"] = {1, 2, 3, 2, 3};  // resumed after epoch 1, epochs 2-3 re-run
  m["train_loss"] = {2, 1.5, 1.2, 1.4, 1.1};
  m["val_loss"] = {2.1, 1.6, 1.3, 1.5, 1.2};
  const std::string svg = render_learning_curves_svg(m, PlotOptions{});
  EXPECT_EQ(xml_problem(svg), "");
  const size_t at = svg.find("data-label=\"val loss\"");
  const std::string d = svg.substr(at, svg.find("/>", at) - at);
  EXPECT_EQ(count(d, " L"), 2u) << d;  // three points, x increasing
  EXPECT_NE(svg.find("last val loss 1.2000"), std::string::npos);
}

TEST(SvgPlot, TitleIsEscaped) {
  PlotOptions o;
  o.title = "a&b <c> \"d\".csv";
  const std::string svg = render_learning_curves_svg(run_metrics(2, 10, 5, false), o);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("a&amp;b &lt;c&gt; &quot;d&quot;.csv"), std::string::npos);
}

TEST(SvgPlot, BadInputThrows) {
  expect_error([] { render_learning_curves_svg({}, PlotOptions{}); }, {"no rows"});
  Metrics empty_columns{{"epoch", {}}, {"train_loss", {}}, {"val_loss", {}}};
  expect_error([&] { render_learning_curves_svg(empty_columns, PlotOptions{}); }, {"no rows"});
  Metrics no_epoch = run_metrics(2, 10, 5, true);
  no_epoch.erase("epoch");
  expect_error([&] { render_learning_curves_svg(no_epoch, PlotOptions{}); },
               {"lack the column(s) epoch", "they have: ", "train_loss"});
  Metrics no_val = run_metrics(2, 10, 5, true);
  no_val.erase("val_loss");
  expect_error([&] { render_learning_curves_svg(no_val, PlotOptions{}); }, {"val_loss"});
  PlotOptions by_step;
  by_step.x = "step";
  Metrics no_step = run_metrics(2, 10, 5, true);
  no_step.erase("step");
  expect_error([&] { render_learning_curves_svg(no_step, by_step); }, {"column(s) step"});
  PlotOptions bad_x;
  bad_x.x = "time";
  expect_error([&] { render_learning_curves_svg(run_metrics(1, 1, 1, false), bad_x); },
               {"epoch or step", "'time'"});
  // Only per-step rows (a run stopped in its first epoch): nothing per epoch...
  Metrics steps_only;
  steps_only["epoch"] = {1, 1};
  steps_only["step"] = {10, 20};
  steps_only["train_loss"] = {2.3, 2.1};
  steps_only["val_loss"] = {kNaN, kNaN};
  expect_error([&] { render_learning_curves_svg(steps_only, PlotOptions{}); },
               {"no per-epoch rows", "--x step"});
  // ...but against steps they draw.
  const std::string svg = render_learning_curves_svg(steps_only, by_step);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_TRUE(has_series(svg, "train loss (per step)"));
  EXPECT_NE(svg.find("no evaluation yet"), std::string::npos);
}

TEST(SvgPlot, RoundTripsThroughAMetricsFileAndWritesAtomically) {
  test::TempDir dir;
  const std::string csv = dir.file("m.csv");
  {
    MetricsWriter w(csv, false);
    const Metrics m = run_metrics(2, 20, 10, true);
    for (size_t r = 0; r < m.at("epoch").size(); ++r) {
      std::vector<std::pair<std::string, double>> row;
      for (const char* c : {"epoch", "step", "lr", "train_loss", "train_top1", "val_loss",
                            "val_top1", "val_top5", "images_per_s", "seconds"}) {
        row.emplace_back(c, m.at(c)[r]);
      }
      w.write(row);
    }
  }
  PlotOptions o;
  o.x = "step";
  const std::string svg = render_learning_curves_svg(read_metrics(csv), o);
  EXPECT_EQ(xml_problem(svg), "");
  const std::string out = dir.file("plot.svg");
  write_file_atomically(out, svg);
  std::ifstream in(out, std::ios::binary);
  std::stringstream back;
  back << in.rdbuf();
  EXPECT_EQ(back.str(), svg);
  // Only the SVG and the metrics remain: no temporary file left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 2u);
  expect_error([&] { write_file_atomically(dir.file("no/such/dir/x.svg"), svg); },
               {"no/such/dir/x.svg"});
}

TEST(SvgPlot, TheCheckerCatchesBrokenDocuments) {
  EXPECT_EQ(xml_problem("<a><b/></a>"), "");
  EXPECT_NE(xml_problem("<a><b></a>"), "");
  EXPECT_NE(xml_problem("<a>x & y</a>"), "");
  EXPECT_NE(xml_problem("<a></a><b/>"), "");
  EXPECT_NE(xml_problem("<a x=\"1 < 2\"/>"), "");
}

}  // namespace
}  // namespace residual
