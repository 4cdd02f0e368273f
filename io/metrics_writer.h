#pragma once
// One row per epoch (and optionally per N steps) for plotting: CSV (.csv) or JSON lines
// (.jsonl / .json). Each row is appended with one checked write as it comes, so a killed
// run keeps its rows; a row that cannot be written (a full disk) is an Error naming the
// file and the cause, and the file is cut back to its last whole row.
#include <map>
#include <string>
#include <vector>

namespace residual {

class MetricsWriter {
 public:
  // Columns are fixed by the first row. `append` keeps an existing file (resume).
  MetricsWriter(const std::string& path, bool append);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const std::vector<std::pair<std::string, double>>& row);

 private:
  std::string path_;
  bool json_ = false;
  bool header_written_ = false;
  int fd_ = -1;
};

// Reads a metrics file back (CSV or JSON lines): column name -> values, in row order.
// Rows missing a column get NaN there.
std::map<std::string, std::vector<double>> read_metrics(const std::string& path);

}  // namespace residual
