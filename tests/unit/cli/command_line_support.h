#pragma once
// What the CLI's parser tests share: a command line parsed into its invocation, and the HTTP
// request one is expected to make.

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace corral::cli::testing {

/// The invocation `args` parse into; a parse error fails the test (and gives an empty one).
inline Invocation parse(std::vector<std::string> args) {
    ParseOutcome outcome = parse_command_line(args);
    EXPECT_TRUE(outcome.invocation.has_value()) << outcome.err;
    return outcome.invocation.value_or(Invocation{});
}

inline HttpRequest request(std::string method, std::string target,
                           std::optional<nlohmann::json> body = std::nullopt) {
    return HttpRequest{std::move(method), std::move(target), std::move(body)};
}

}  // namespace corral::cli::testing
