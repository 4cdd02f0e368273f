#pragma once
// Learning curves from a metrics file (see metrics_writer.h) as a self-contained SVG:
// two panels side by side, loss (train_loss, val_loss) and accuracy (train_top1, val_top1,
// val_top5 when it has values), each with axes, tick labels, grid and a legend.
//
// Rows are told apart as the trainer writes them: per-epoch rows have a finite val_loss;
// per-step rows have a finite train_loss and a NaN val_loss. Per-epoch rows are drawn as
// lines with markers; with x = "step" the per-step rows add a thin train line to each panel.
#include <map>
#include <string>
#include <vector>

namespace residual {

struct PlotOptions {
  std::string x = "epoch";  // the x axis: "epoch" or "step" (a column of the metrics)
  std::string title;        // the heading, escaped for XML; empty: "Learning curves"
  int width = 1100;         // SVG size in pixels
  int height = 460;
};

// The SVG document. Throws residual::Error when the metrics lack the x column, train_loss
// or val_loss, have no rows, or have nothing finite to draw.
std::string render_learning_curves_svg(const std::map<std::string, std::vector<double>>& metrics,
                                       const PlotOptions& options);

}  // namespace residual
