#include "cli/suggest.h"

#include <algorithm>
#include <utility>

namespace corral::cli {

std::size_t edit_distance(const std::string& a, const std::string& b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i)
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[n][m];
}

std::optional<std::string> nearest(const std::string& word, const std::vector<std::string>& candidates) {
    // Words other tools use for the same thing (virsh, qm, docker): too far apart to be typos.
    static const std::pair<const char*, const char*> k_synonyms[] = {
        {"destroy", "delete"}, {"remove", "delete"}, {"del", "delete"},   {"new", "create"},
        {"add", "create"},     {"boot", "start"},    {"run", "start"},    {"up", "start"},
        {"shutdown", "stop"},  {"halt", "stop"},     {"down", "stop"},    {"poweroff", "stop"},
        {"ps", "list"},        {"status", "show"},   {"inspect", "show"}, {"get", "show"},
        {"describe", "show"},  {"suspend", "pause"}, {"unpause", "resume"}, {"restart", "reboot"},
        {"abort", "cancel"},   {"grow", "resize"},   {"copy", "clone"},   {"cp", "clone"},
        {"--mem", "--memory"}, {"--vcpu", "--cpus"}, {"--cpu", "--cpus"},
    };
    for (const auto& [synonym, meaning] : k_synonyms)
        if (word == synonym && std::find(candidates.begin(), candidates.end(), meaning) != candidates.end())
            return std::string(meaning);
    std::optional<std::string> best;
    std::size_t best_distance = 0;
    for (const auto& candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        if (!best || distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    // A typo changes a letter or two; more than a third of the word is another word.
    const std::size_t letters = word.rfind("--", 0) == 0 ? word.size() - 2 : word.size();
    if (!best || best_distance > std::max<std::size_t>(1, std::min<std::size_t>(2, letters / 3 + 1))) return std::nullopt;
    return best;
}

}  // namespace corral::cli
