#pragma once

#include <optional>
#include <string>
#include <vector>

namespace corral::cli {

/// The optimal-string-alignment distance between two words: insertions, deletions, substitutions
/// and swaps of two neighbours each cost 1 (`strat` is 1 from `start`).
std::size_t edit_distance(const std::string& a, const std::string& b);

/// What the user probably meant by `word`, from `candidates`: a known synonym (`destroy` ->
/// `delete`), else the nearest candidate when it is close enough to be a typo; nothing otherwise.
std::optional<std::string> nearest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace corral::cli
