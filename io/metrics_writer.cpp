#include "io/metrics_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
  RESIDUAL_CHECK(fd_ >= 0, "cannot write the metrics file '", path, "': ", std::strerror(errno));
  struct stat st = {};
  header_written_ = append && ::fstat(fd_, &st) == 0 && st.st_size > 0;
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsWriter::write(const std::vector<std::pair<std::string, double>>& row) {
  std::string text;
  if (json_) {
    nlohmann::ordered_json j;
    for (const auto& [k, v] : row) j[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nullptr;
    text = j.dump() + "\n";
  } else {
    if (!header_written_) {
      for (size_t i = 0; i < row.size(); ++i) text += (i ? "," : "") + row[i].first;
      text += "\n";
    }
    for (size_t i = 0; i < row.size(); ++i) text += (i ? "," : "") + format_value(row[i].second);
    text += "\n";
  }
  // Appended at the end (the file is kept open without O_APPEND when truncated, so
  // position explicitly); a failed write is cut back off, leaving whole rows only.
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  RESIDUAL_CHECK(end >= 0, "cannot append to the metrics file '", path_,
                 "': ", std::strerror(errno));
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      if (::ftruncate(fd_, end) == 0) ::lseek(fd_, end, SEEK_SET);
      fail("cannot append to the metrics file '", path_, "': ", std::strerror(error));
    }
    done += static_cast<size_t>(n);
  }
  header_written_ = true;
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
