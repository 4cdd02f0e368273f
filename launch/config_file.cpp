#include "launch/config_file.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "core/edit_distance.h"
#include "core/error.h"
#include "launch/path_checks.h"

namespace residual {
namespace {

std::string trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

// Reads one file's lines and reports errors against them.
class ConfigParser {
 public:
  ConfigParser(std::string path, std::string section)
      : path_(std::move(path)), section_(std::move(section)) {}

  std::vector<ConfigEntry> parse(std::istream& in) {
    std::string raw;
    while (std::getline(in, raw)) {
      ++line_;
      if (line_ == 1 && raw.rfind("\xEF\xBB\xBF", 0) == 0) raw.erase(0, 3);  // UTF-8 BOM
      RESIDUAL_CHECK(raw.find('\0') == std::string::npos, "config file '", path_,
                     "' is not a text file (a NUL byte on line ", line_, ")");
      const std::string line = trim(raw);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      if (line[0] == '[') {
        open_section(line);
      } else {
        add_entry(line, in);
      }
    }
    return std::move(entries_);
  }

 private:
  [[noreturn]] void fail_line(const std::string& what) const {
    fail("config file '", path_, "' line ", line_, ": ", what);
  }

  void open_section(const std::string& line) {
    std::string name = line;
    if (name.back() != ']') fail_line("a section header must be [name], got " + line);
    name = trim(name.substr(1, name.size() - 2));
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {  // TOML [[name]]
      name = trim(name.substr(1, name.size() - 2));
    }
    if (name != section_ && name != "default") {
      fail_line("section [" + name + "] is not [" + section_ + "] (put the options of `residual " +
                section_ + "` under [" + section_ + "] or before any section)");
    }
  }

  // key = value, with the value's own syntax; a '[' value may continue on later lines.
  void add_entry(const std::string& line, std::istream& in) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) {
      fail_line("expected 'key = value', '[" + section_ + "]' or a comment, got '" +
                line.substr(0, 60) + "'");
    }
    std::string key = unquote_key(trim(line.substr(0, eq)));
    if (key.rfind(section_ + ".", 0) == 0) key.erase(0, section_.size() + 1);  // train.lr
    std::replace(key.begin(), key.end(), '_', '-');
    if (key.empty() ||
        key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
      fail_line("'" + trim(line.substr(0, eq)) + "' is not an option name");
    }
    const auto seen = first_line_.find(key);
    if (seen != first_line_.end()) {
      fail_line("'" + key + "' is set again (first on line " + std::to_string(seen->second) + ")");
    }
    first_line_[key] = line_;
    const int key_line = line_;
    std::string text = trim(line.substr(eq + 1));
    ConfigEntry entry{key, {}, key_line};
    if (!text.empty() && text[0] == '[') {
      std::string more;
      while (!closes_array(text) && std::getline(in, more)) {
        ++line_;
        text += " " + trim(more);
      }
      if (!closes_array(text)) {
        line_ = key_line;
        fail_line("the list of '" + key + "' has no closing ']'");
      }
      entry.values = list_values(text, key);
    } else {
      size_t pos = 0;
      entry.values.push_back(scalar(text, pos, key, "#"));
      rest_is_comment(text, pos, key);
    }
    entries_.push_back(std::move(entry));
  }

  std::string unquote_key(const std::string& key) const {
    if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') &&
        key.back() == key.front()) {
      return key.substr(1, key.size() - 2);
    }
    return key;
  }

  // Whether a ']' outside quotes ends the list.
  static bool closes_array(const std::string& text) {
    char quote = 0;
    for (size_t i = 1; i < text.size(); ++i) {
      const char c = text[i];
      if (quote) {
        if (c == '\\' && quote == '"')
          ++i;
        else if (c == quote)
          quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        return false;
      } else if (c == ']') {
        return true;
      }
    }
    return false;
  }

  std::vector<std::string> list_values(const std::string& text, const std::string& key) const {
    std::vector<std::string> values;
    size_t pos = 1;
    skip_blanks(text, pos);
    if (text[pos] != ']') {
      for (;;) {
        values.push_back(scalar(text, pos, key, ",]#"));
        skip_blanks(text, pos);
        if (text[pos] == ']') break;
        if (text[pos] != ',') fail_line("the list of '" + key + "' needs ',' between its values");
        ++pos;
        skip_blanks(text, pos);
        if (text[pos] == ']') break;  // a trailing comma
      }
    }
    ++pos;
    rest_is_comment(text, pos, key);
    return values;
  }

  // A quoted string, or bare text up to one of `stops`, from `pos`; leaves `pos` after it.
  std::string scalar(const std::string& text, size_t& pos, const std::string& key,
                     const char* stops) const {
    skip_blanks(text, pos);
    if (pos < text.size() && (text[pos] == '"' || text[pos] == '\'')) {
      const char quote = text[pos++];
      std::string value;
      while (pos < text.size() && text[pos] != quote) {
        char c = text[pos++];
        if (c == '\\' && quote == '"' && pos < text.size()) {
          c = text[pos++];
          if (c == 'n')
            c = '\n';
          else if (c == 't')
            c = '\t';
        }
        value += c;
      }
      if (pos >= text.size()) fail_line("the value of '" + key + "' has no closing " + quote);
      ++pos;
      return value;
    }
    const size_t end = text.find_first_of(stops, pos);
    std::string value =
        trim(text.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    pos = end == std::string::npos ? text.size() : end;
    if (value.empty()) fail_line("'" + key + "' has no value");
    return value;
  }

  void rest_is_comment(const std::string& text, size_t pos, const std::string& key) const {
    skip_blanks(text, pos);
    if (pos < text.size() && text[pos] != '#') {
      fail_line("unexpected '" + text.substr(pos, 20) + "' after the value of '" + key + "'");
    }
  }

  static void skip_blanks(const std::string& text, size_t& pos) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
  }

  std::string path_, section_;
  int line_ = 0;
  std::vector<ConfigEntry> entries_;
  std::map<std::string, int> first_line_;
};

bool is_setting(const CLI::Option* option) {
  return option != nullptr && option->get_configurable() && !option->get_lnames().empty() &&
         option->get_lnames().front() != "help" && option->get_lnames().front() != "config";
}

[[noreturn]] void unknown_key(const CLI::App& command, const std::string& path,
                              const ConfigEntry& entry) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    if (is_setting(option)) names.push_back(option->get_lnames().front());
  }
  const std::string near = nearest_name(entry.key, names);
  fail("config file '", path, "' line ", entry.line, ": '", entry.key,
       "' is not an option of `residual ", command.get_name(), "`",
       near.empty() ? std::string() : " ('" + near + "': a misspelling?)");
}

}  // namespace

std::vector<ConfigEntry> read_config_file(const std::string& path, const std::string& section) {
  check_input_file(path, "config file", kMaxConfigFileBytes);
  std::ifstream in(path, std::ios::binary);
  RESIDUAL_CHECK(in, "cannot read config file '", path, "'");
  return ConfigParser(path, section).parse(in);
}

void apply_config_file(CLI::App& command, const std::string& path) {
  for (const ConfigEntry& entry : read_config_file(path, command.get_name())) {
    CLI::Option* option = command.get_option_no_throw("--" + entry.key);
    if (!is_setting(option)) unknown_key(command, path, entry);
    if (option->count() > 0) continue;  // given on the command line: that wins
    if (entry.values.empty() || (entry.values.size() == 1 && entry.values[0].empty())) continue;
    std::vector<std::string> values = entry.values;
    if (option->get_expected_min() == 0) {  // a flag: true or false
      const std::string v = values.size() == 1 ? values[0] : "";
      if (v != "true" && v != "false") {
        fail("config file '", path, "' line ", entry.line, ": ", option->get_name(),
             " is a flag: true or false, got '", v, "'");
      }
      if (v == "false") continue;  // every flag is off unless given
    }
    try {
      option->add_result(values);
      option->run_callback();  // the option's validators and conversion
    } catch (const CLI::Error& e) {
      fail("config file '", path, "' line ", entry.line, ": ", e.what());
    }
  }
}

}  // namespace residual
