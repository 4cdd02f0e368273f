#pragma once
// Edit distance for "a misspelling?" hints: a layer config key, a config-file key.
#include <cstddef>
#include <string>
#include <vector>

namespace residual {

// Levenshtein distance, enough to tell a misspelt name ("filter", "kernelsize").
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `name` within `max_distance` edits ("" when there is none);
// the first of equally close ones.
std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates,
                         size_t max_distance = 2);

}  // namespace residual
