#pragma once
// `--config FILE` for a subcommand: options from a TOML or INI file. CLI11 2.1 reads a
// config file only for the main app, so a subcommand's set_config() was silently ignored;
// this reads the file itself and hands each value to the option, through the option's
// own validators.
//
// The format (a subset of TOML that INI files also fit):
//   # or ; starts a comment line; # also ends a value outside quotes
//   key = value       keys are the long option names without dashes (lr, batch-size;
//                     batch_size is the same key); values bare or quoted ("..." / '...')
//   key = [a, b]      several values (may span lines)
//   [train]           a section: the command's own name (or [default]); keys before
//                     any section count too
// A key set to "" is unset (that is how the echoed configuration writes an option that has
// no value); a flag takes true or false.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace residual {

struct ConfigEntry {
  std::string key;  // with '-' for '_'
  std::vector<std::string> values;
  int line = 0;
};

// Parses `path` (a regular text file of at most 1 MiB). Every error names the file and,
// for a bad line, its number.
std::vector<ConfigEntry> read_config_file(const std::string& path, const std::string& section);

// Sets every option of `command` that the file names and the command line did not: the
// command line wins. An unknown key (with the nearest option name as a hint), a bad value
// or an option that is not a setting (--config, --help) is an Error naming the file, the
// line and the key.
void apply_config_file(CLI::App& command, const std::string& path);

}  // namespace residual
