#include "io/svg_plot.h"


#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "core/error.h"
#include "io/plot_axes.h"

namespace residual {
namespace {

using plot::Axis;
using plot::nice_axis;
using plot::ticks;

using Metrics = std::map<std::string, std::vector<double>>;
using Column = std::vector<double>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const Column* find_column(const Metrics& m, const std::string& name) {
  const auto it = m.find(name);
  return it == m.end() ? nullptr : &it->second;
}

// Row i of a column; a missing column or a short one reads as NaN.
double at(const Column* col, size_t i) {
  return col != nullptr && i < col->size() ? (*col)[i] : kNaN;
}

bool any_finite(const Column* col) {
  return col != nullptr && std::any_of(col->begin(), col->end(), [](double v) { return std::isfinite(v); });
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Pixel coordinates and other numbers written into the SVG.
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string format_fixed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// ---- series and panels -----------------------------------------------------------------

struct Series {
  std::string label;
  std::string color;
  double stroke_width = 2;
  std::string dash;        // stroke-dasharray, empty: solid
  double opacity = 1;
  bool markers = true;     // circles at the points
  bool behind = false;     // drawn before the others
  std::vector<std::pair<double, double>> points;  // (x, y); a NaN y is a gap

  // Markers only while they do not crowd the line.
  bool draws_markers() const { return markers && finite_points() <= 60; }

  size_t finite_points() const {
    return static_cast<size_t>(std::count_if(points.begin(), points.end(), [](const auto& p) {
      return std::isfinite(p.second);
    }));
  }
};

struct Panel {
  std::string title;
  std::string y_label;
  std::string empty_note;  // shown when no series has a point
  double y_floor = kNaN, y_ceiling = kNaN;
  std::vector<Series> series;  // drawn in order; the legend lists them in order
};

// Rows of one kind sorted by x; of rows with the same x (a resumed run), the last wins.
std::vector<size_t> sort_rows(std::vector<size_t> rows, const Column* x) {
  std::stable_sort(rows.begin(), rows.end(),
                   [x](size_t a, size_t b) { return at(x, a) < at(x, b); });
  std::vector<size_t> out;
  for (const size_t r : rows) {
    if (!out.empty() && at(x, out.back()) == at(x, r)) {
      out.back() = r;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

Series make_series(const std::string& label, const std::string& color, const Column* x,
                   const Column* y, const std::vector<size_t>& rows, double scale) {
  Series s;
  s.label = label;
  s.color = color;
  for (const size_t r : rows) s.points.emplace_back(at(x, r), at(y, r) * scale);
  return s;
}

struct Frame {
  double left = 0, top = 0, right = 1, bottom = 1;  // the plot area
  double inset = 8;                 // data stay this far from the frame
  Axis xa, ya;

  double px(double x) const {
    return left + inset + (x - xa.lo) / (xa.hi - xa.lo) * (right - left - 2 * inset);
  }
  double py(double y) const {
    return bottom - inset - (y - ya.lo) / (ya.hi - ya.lo) * (bottom - top - 2 * inset);
  }
};

struct Box {
  double x, y, w, h;
  bool contains(double px, double py) const {
    return px >= x && px <= x + w && py >= y && py <= y + h;
  }
};

// Where the legend covers the fewest drawn points (segments sampled along their length).
Box place_legend(const Frame& f, const std::vector<const Series*>& shown, double w, double h) {
  const double m = 8;
  const std::vector<Box> corners = {
      {f.right - m - w, f.top + m, w, h},     // top right
      {f.right - m - w, f.bottom - m - h, w, h},  // bottom right
      {f.left + m, f.top + m, w, h},          // top left
      {f.left + m, f.bottom - m - h, w, h},   // bottom left
  };
  std::vector<size_t> hits(corners.size(), 0);
  auto count = [&](double x, double y) {
    for (size_t c = 0; c < corners.size(); ++c) hits[c] += corners[c].contains(x, y) ? 1 : 0;
  };
  for (const Series* s : shown) {
    for (size_t i = 0; i < s->points.size(); ++i) {
      const auto& p = s->points[i];
      if (!std::isfinite(p.second)) continue;
      const double x1 = f.px(p.first), y1 = f.py(p.second);
      count(x1, y1);
      if (i + 1 < s->points.size() && std::isfinite(s->points[i + 1].second)) {
        const double x2 = f.px(s->points[i + 1].first), y2 = f.py(s->points[i + 1].second);
        const int samples = 1 + static_cast<int>(std::hypot(x2 - x1, y2 - y1) / 4);
        for (int k = 1; k < samples; ++k) {
          const double t = static_cast<double>(k) / samples;
          count(x1 + t * (x2 - x1), y1 + t * (y2 - y1));
        }
      }
    }
  }
  size_t best = 0;
  for (size_t c = 1; c < corners.size(); ++c) {
    if (hits[c] < hits[best]) best = c;
  }
  return corners[best];
}

void draw_series(std::string& svg, const Frame& f, const Series& s) {
  std::string d;
  bool pen_down = false;
  std::vector<std::pair<double, double>> lone;  // points with no finite neighbour
  for (size_t i = 0; i < s.points.size(); ++i) {
    const auto& p = s.points[i];
    if (!std::isfinite(p.second) || !std::isfinite(p.first)) {
      pen_down = false;
      continue;
    }
    const double x = f.px(p.first), y = f.py(p.second);
    d += (pen_down ? " L" : (d.empty() ? "M" : " M")) + num(x) + " " + num(y);
    const bool next_finite = i + 1 < s.points.size() && std::isfinite(s.points[i + 1].second) &&
                             std::isfinite(s.points[i + 1].first);
    if (!pen_down && !next_finite) lone.emplace_back(x, y);
    pen_down = true;
  }
  if (d.empty()) return;
  svg += "<g class=\"series\" data-label=\"" + xml_escape(s.label) + "\">\n";
  svg += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"" +
         num(s.stroke_width) + "\" stroke-linejoin=\"round\" stroke-linecap=\"round\"";
  if (!s.dash.empty()) svg += " stroke-dasharray=\"" + s.dash + "\"";
  if (s.opacity < 1) svg += " stroke-opacity=\"" + num(s.opacity) + "\"";
  svg += "/>\n";
  if (s.draws_markers()) {
    for (const auto& p : s.points) {
      if (!std::isfinite(p.second) || !std::isfinite(p.first)) continue;
      svg += "<circle cx=\"" + num(f.px(p.first)) + "\" cy=\"" + num(f.py(p.second)) +
             "\" r=\"3.2\" fill=\"" + s.color + "\" stroke=\"white\" stroke-width=\"1\"/>\n";
    }
  } else {
    for (const auto& [x, y] : lone) {
      svg += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"2.5\" fill=\"" + s.color +
             "\"/>\n";
    }
  }
  svg += "</g>\n";
}

void draw_text(std::string& svg, double x, double y, const std::string& text,
               const std::string& attrs) {
  svg += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" " + attrs + ">" + xml_escape(text) +
         "</text>\n";
}

void draw_panel(std::string& svg, const Panel& panel, double left, double top, double right,
                double bottom, const std::string& x_label) {
  Frame f;
  f.left = left;
  f.top = top;
  f.right = right;
  f.bottom = bottom;
  std::vector<const Series*> shown;
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  bool x_integer = true;
  for (const Series& s : panel.series) {
    if (s.finite_points() == 0) continue;
    shown.push_back(&s);
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y);
      y_hi = std::max(y_hi, y);
      x_integer = x_integer && x == std::floor(x);
    }
  }

  svg += "<g class=\"panel\">\n";
  draw_text(svg, (left + right) / 2, top - 12, panel.title,
            "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\"");
  if (shown.empty()) {
    svg += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(right - left) +
           "\" height=\"" + num(bottom - top) + "\" fill=\"#fafafa\" stroke=\"#888\"/>\n";
    draw_text(svg, (left + right) / 2, (top + bottom) / 2, panel.empty_note,
              "text-anchor=\"middle\" font-size=\"13\" fill=\"#888\"");
    svg += "</g>\n";
    return;
  }
  f.xa = nice_axis(x_lo, x_hi, 6, x_integer, 0, kNaN);
  f.ya = nice_axis(y_lo, y_hi, 5, false, panel.y_floor, panel.y_ceiling);

  // Grid and ticks.
  svg += "<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">\n";
  for (const double t : ticks(f.xa)) {
    svg += "<line x1=\"" + num(f.px(t)) + "\" y1=\"" + num(top) + "\" x2=\"" + num(f.px(t)) +
           "\" y2=\"" + num(bottom) + "\"/>\n";
  }
  for (const double t : ticks(f.ya)) {
    svg += "<line x1=\"" + num(left) + "\" y1=\"" + num(f.py(t)) + "\" x2=\"" + num(right) +
           "\" y2=\"" + num(f.py(t)) + "\"/>\n";
  }
  svg += "</g>\n";
  svg += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(right - left) +
         "\" height=\"" + num(bottom - top) + "\" fill=\"none\" stroke=\"#444\"/>\n";
  svg += "<g class=\"x-ticks\" font-size=\"11\" fill=\"#333\" text-anchor=\"middle\">\n";
  for (const double t : ticks(f.xa)) {
    svg += "<line x1=\"" + num(f.px(t)) + "\" y1=\"" + num(bottom) + "\" x2=\"" + num(f.px(t)) +
           "\" y2=\"" + num(bottom + 5) + "\" stroke=\"#444\"/>\n";
    draw_text(svg, f.px(t), bottom + 18, format_fixed(t, f.xa.decimals), "");
  }
  svg += "</g>\n";
  svg += "<g class=\"y-ticks\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\">\n";
  for (const double t : ticks(f.ya)) {
    svg += "<line x1=\"" + num(left - 5) + "\" y1=\"" + num(f.py(t)) + "\" x2=\"" + num(left) +
           "\" y2=\"" + num(f.py(t)) + "\" stroke=\"#444\"/>\n";
    draw_text(svg, left - 8, f.py(t) + 4, format_fixed(t, f.ya.decimals), "");
  }
  svg += "</g>\n";
  draw_text(svg, (left + right) / 2, bottom + 40, x_label,
            "class=\"x-label\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222\"");
  const double ly = (top + bottom) / 2, lx = left - 52;
  svg += "<text class=\"y-label\" x=\"" + num(lx) + "\" y=\"" + num(ly) +
         "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222\" transform=\"rotate(-90 " +
         num(lx) + " " + num(ly) + ")\">" + xml_escape(panel.y_label) + "</text>\n";

  for (const bool behind : {true, false}) {
    for (const Series* s : shown) {
      if (s->behind == behind) draw_series(svg, f, *s);
    }
  }

  // Legend: a sample of each line and its name.
  size_t longest = 0;
  for (const Series* s : shown) longest = std::max(longest, s->label.size());
  const double row_h = 18, w = 44 + 6.8 * static_cast<double>(longest),
               h = 8 + row_h * static_cast<double>(shown.size());
  const Box box = place_legend(f, shown, w, h);
  svg += "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n";
  svg += "<rect x=\"" + num(box.x) + "\" y=\"" + num(box.y) + "\" width=\"" + num(box.w) +
         "\" height=\"" + num(box.h) +
         "\" rx=\"3\" fill=\"white\" fill-opacity=\"0.88\" stroke=\"#bbb\"/>\n";
  for (size_t i = 0; i < shown.size(); ++i) {
    const Series& s = *shown[i];
    const double y = box.y + 4 + row_h * (static_cast<double>(i) + 0.5);
    svg += "<line x1=\"" + num(box.x + 8) + "\" y1=\"" + num(y) + "\" x2=\"" + num(box.x + 32) +
           "\" y2=\"" + num(y) + "\" stroke=\"" + s.color + "\" stroke-width=\"" +
           num(std::max(s.stroke_width, 1.5)) + "\"";
    if (!s.dash.empty()) svg += " stroke-dasharray=\"" + s.dash + "\"";
    if (s.opacity < 1) svg += " stroke-opacity=\"" + num(std::max(s.opacity, 0.6)) + "\"";
    svg += "/>\n";
    if (s.draws_markers()) {
      svg += "<circle cx=\"" + num(box.x + 20) + "\" cy=\"" + num(y) + "\" r=\"3.2\" fill=\"" +
             s.color + "\" stroke=\"white\" stroke-width=\"1\"/>\n";
    }
    draw_text(svg, box.x + 38, y + 4, s.label, "");
  }
  svg += "</g>\n</g>\n";
}

}  // namespace

std::string render_learning_curves_svg(const Metrics& metrics, const PlotOptions& options) {
  RESIDUAL_CHECK(options.x == "epoch" || options.x == "step",
                 "the x axis must be epoch or step, not '", options.x, "'");
  RESIDUAL_CHECK(options.width >= 300 && options.height >= 200,
                 "the plot must be at least 300x200 pixels");
  size_t rows = 0;
  for (const auto& [name, col] : metrics) rows = std::max(rows, col.size());
  RESIDUAL_CHECK(rows > 0, "the metrics have no rows");
  std::string missing, present;
  for (const std::string& name : {options.x, std::string("train_loss"), std::string("val_loss")}) {
    if (metrics.count(name) == 0) missing += (missing.empty() ? "" : ", ") + name;
  }
  for (const auto& [name, col] : metrics) present += (present.empty() ? "" : ", ") + name;
  RESIDUAL_CHECK(missing.empty(), "the metrics lack the column(s) ", missing,
                 " (they have: ", present, ")");

  const Column* x = find_column(metrics, options.x);
  const Column* train_loss = find_column(metrics, "train_loss");
  const Column* val_loss = find_column(metrics, "val_loss");
  const Column* train_top1 = find_column(metrics, "train_top1");
  const Column* val_top1 = find_column(metrics, "val_top1");
  const Column* val_top5 = find_column(metrics, "val_top5");

  std::vector<size_t> epoch_rows, step_rows;
  for (size_t r = 0; r < rows; ++r) {
    if (!std::isfinite(at(x, r))) continue;
    if (std::isfinite(at(val_loss, r))) {
      epoch_rows.push_back(r);
    } else if (std::isfinite(at(train_loss, r))) {
      step_rows.push_back(r);
    }
  }
  epoch_rows = sort_rows(epoch_rows, x);
  step_rows = sort_rows(step_rows, x);
  const bool per_step = options.x == "step" && !step_rows.empty();
  if (epoch_rows.empty()) {
    RESIDUAL_CHECK(per_step, "the metrics have no per-epoch rows (rows with a finite val_loss",
                   options.x == "epoch" ? "" : " and step", ")",
                   !step_rows.empty() ? "; plot the per-step rows with --x step" : "");
  }

  const std::string kTrain = "#1f77b4", kVal = "#ff7f0e", kTop5 = "#2ca02c";
  Panel loss;
  loss.title = "Loss";
  loss.y_label = "loss";
  loss.empty_note = "no loss values";
  loss.y_floor = 0;
  Panel acc;
  acc.title = "Accuracy";
  acc.y_label = "accuracy (%)";
  acc.empty_note = "no accuracy values";
  acc.y_floor = 0;
  acc.y_ceiling = 100;
  loss.series.push_back(make_series("train loss", kTrain, x, train_loss, epoch_rows, 1));
  loss.series.push_back(make_series("val loss", kVal, x, val_loss, epoch_rows, 1));
  acc.series.push_back(make_series("train top1", kTrain, x, train_top1, epoch_rows, 100));
  acc.series.push_back(make_series("val top1", kVal, x, val_top1, epoch_rows, 100));
  if (any_finite(val_top5)) {
    Series s = make_series("val top5", kTop5, x, val_top5, epoch_rows, 100);
    s.dash = "6 4";
    acc.series.push_back(std::move(s));
  }
  if (per_step) {
    // Thin and faint, drawn behind the per-epoch lines, last in the legend.
    for (Panel* panel : {&loss, &acc}) {
      const bool is_acc = panel == &acc;
      Series s = make_series(is_acc ? "train top1 (per step)" : "train loss (per step)", kTrain,
                             x, is_acc ? train_top1 : train_loss, step_rows, is_acc ? 100 : 1);
      s.stroke_width = 1;
      s.opacity = 0.45;
      s.markers = false;
      s.behind = true;
      panel->series.push_back(std::move(s));
    }
  }

  // A line under the title: how far the run got and its best held-out accuracy.
  std::string summary;
  if (!epoch_rows.empty()) {
    const Column* epoch = find_column(metrics, "epoch");
    const double last_epoch = at(epoch, epoch_rows.back());
    summary = std::isfinite(last_epoch)
                  ? str_cat(format_fixed(last_epoch, 0), last_epoch == 1 ? " epoch" : " epochs")
                  : str_cat(epoch_rows.size(), " evaluations");
    size_t best = epoch_rows.front();
    for (const size_t r : epoch_rows) {
      if (at(val_top1, r) > at(val_top1, best) || !std::isfinite(at(val_top1, best))) best = r;
    }
    if (std::isfinite(at(val_top1, best))) {
      summary += str_cat(" \xc2\xb7 best val top1 ", format_fixed(100 * at(val_top1, best), 2),
                         "% (", options.x, " ", format_fixed(at(x, best), 0), ")");
    }
    summary += str_cat(" \xc2\xb7 last val loss ", format_fixed(at(val_loss, epoch_rows.back()), 4));
  } else {
    summary = str_cat(step_rows.size(), " per-step rows, no evaluation yet");
  }

  const double W = options.width, H = options.height;
  std::string svg;
  svg.reserve(16384 + 40 * (epoch_rows.size() * 8 + step_rows.size() * 2));
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(W) +
         "\" height=\"" + num(H) + "\" viewBox=\"0 0 " + num(W) + " " + num(H) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
  const std::string title = options.title.empty() ? "Learning curves" : options.title;
  svg += "<title>" + xml_escape(title) + "</title>\n";
  svg += "<rect width=\"" + num(W) + "\" height=\"" + num(H) + "\" fill=\"white\"/>\n";
  draw_text(svg, W / 2, 28, title,
            "class=\"title\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\" "
            "fill=\"#111\"");
  draw_text(svg, W / 2, 48, summary,
            "class=\"subtitle\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\"");
  const double half = W / 2, top = 88, bottom = H - 58;
  draw_panel(svg, loss, 78, top, half - 24, bottom, options.x);
  draw_panel(svg, acc, half + 78, top, W - 24, bottom, options.x);
  svg += "</svg>\n";
  return svg;
}

}  // namespace residual
