#include "cli/cli_terms.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

ApiError refused(int status, std::string field, std::string message) {
    return ApiError{ApiErrorKind::Refused, std::move(message), std::move(field), status, {}};
}

TEST(CliTerms, FieldsBecomeFlagsAndA400ExitsTwo) {
    const HttpRequest create{"POST", "/api/v1/vms", std::nullopt};
    const CliError said = in_cli_terms(refused(400, "vcpus", "vcpus must be from 1 to 2 (the host's CPUs) (got 9)"), create);
    EXPECT_EQ(said.error.message, "--cpus must be from 1 to 2 (the host's CPUs) (got 9)");
    EXPECT_EQ(said.error.field, "");
    EXPECT_EQ(said.flag, "--cpus");
    EXPECT_EQ(exit_code_for(said.error), 2);
}

TEST(CliTerms, RoutesBecomeVerbsAndProseKeepsItsWords) {
    const HttpRequest create{"POST", "/api/v1/vms", std::nullopt};
    const CliError said = in_cli_terms(refused(400, "image", "no image named nope (list them with GET /api/v1/images)"), create);
    EXPECT_EQ(said.error.message, "no image named nope (list them with corral image list)");
}

TEST(CliTerms, SizesAreHumanAndTheSentencesSubjectWins) {
    const HttpRequest resize{"POST", "/api/v1/volumes/default/data/resize", std::nullopt};
    const CliError shrink = in_cli_terms(
        refused(400, "size_bytes", "volume 'data' cannot shrink: size_bytes must be at least its current size "
                                   "21474836480 (got 10737418240)"),
        resize);
    EXPECT_EQ(shrink.error.message, "volume 'data' cannot shrink: SIZE must be at least its current size 20G (got 10G)");
    // corrald blames `name` for a bad size; the sentence is about size_bytes.
    const HttpRequest create{"POST", "/api/v1/volumes", std::nullopt};
    const CliError tiny =
        in_cli_terms(refused(400, "name", "size_bytes must be a positive multiple of 512 up to 4096 (got 100)"), create);
    EXPECT_EQ(tiny.error.message, "--size must be a positive multiple of 512 up to 4K (got 100)");
}

TEST(CliTerms, AMissingThingIsNotAFieldAndExitsOne) {
    const HttpRequest start{"PUT", "/api/v1/vms/nosuch/state", std::nullopt};
    const CliError said = in_cli_terms(refused(404, "action", "no VM named nosuch"), start);
    EXPECT_EQ(format_error(said.error, "nosuch"), "corral: no VM named nosuch");
    EXPECT_EQ(exit_code_for(said.error), 1);
}

TEST(CliTerms, JsonErrorsCarryTheFlagAndExitCode) {
    const HttpRequest create{"POST", "/api/v1/vms", std::nullopt};
    const CliError said = in_cli_terms(refused(400, "memory_mib", "memory_mib must be from 64 to 1024 MiB"), create);
    EXPECT_EQ(nlohmann::json::parse(error_json("web1: --memory must be from 64 to 1024 MiB", said, 2)),
              (nlohmann::json{{"error",
                               {{"message", "web1: --memory must be from 64 to 1024 MiB"}, {"flag", "--memory"},
                                {"status", 400}, {"exit_code", 2}}}}));
}

}  // namespace
}  // namespace corral::cli
