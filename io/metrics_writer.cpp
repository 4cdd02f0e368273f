#include "io/metrics_writer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace residual {
namespace {

bool is_json_path(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json";
}

std::string format_value(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, bool append)
    : path_(path), json_(is_json_path(path)) {
  header_written_ = append && std::filesystem::exists(path) && std::filesystem::file_size(path) > 0;
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  RESIDUAL_CHECK(out_, "cannot write the metrics file '", path, "'");
}

void MetricsWriter::write(const std::vector<std::pair<std::string, double>>& row) {
  if (json_) {
    nlohmann::ordered_json j;
    for (const auto& [k, v] : row) j[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nullptr;
    out_ << j.dump() << "\n";
  } else {
    if (!header_written_) {
      for (size_t i = 0; i < row.size(); ++i) out_ << (i ? "," : "") << row[i].first;
      out_ << "\n";
      header_written_ = true;
    }
    for (size_t i = 0; i < row.size(); ++i) out_ << (i ? "," : "") << format_value(row[i].second);
    out_ << "\n";
  }
  out_.flush();
  RESIDUAL_CHECK(out_.good(), "error writing the metrics file '", path_, "'");
}

std::map<std::string, std::vector<double>> read_metrics(const std::string& path) {
  std::ifstream in(path);
  RESIDUAL_CHECK(in, "cannot open the metrics file '", path, "'");
  std::map<std::string, std::vector<double>> columns;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string line;
  size_t rows = 0, line_no = 0;
  if (is_json_path(path)) {
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        fail(path, ":", line_no, ": not a JSON object");
      }
      for (auto& [k, v] : j.items()) {
        auto& col = columns[k];
        col.resize(rows, nan);
        col.push_back(v.is_number() ? v.get<double>() : nan);
      }
      ++rows;
      for (auto& [k, col] : columns) col.resize(rows, nan);
    }
    return columns;
  }
  std::vector<std::string> header;
  RESIDUAL_CHECK(std::getline(in, line), path, ": empty metrics file");
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) header.push_back(cell);
  line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::stringstream ls(line);
    size_t i = 0;
    for (std::string cell; std::getline(ls, cell, ','); ++i) {
      RESIDUAL_CHECK(i < header.size(), path, ":", line_no, ": more cells than columns");
      columns[header[i]].push_back(cell == "nan" ? nan : std::strtod(cell.c_str(), nullptr));
    }
  }
  return columns;
}

}  // namespace residual
