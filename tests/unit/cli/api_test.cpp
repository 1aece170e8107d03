#include "cli/api.h"

#include <gtest/gtest.h>

#include "cli/render.h"

namespace corral::cli {
namespace {

TEST(ErrorFromResponse, ReadsTheDaemonsErrorBody) {
    ApiError e = error_from_response(
        {409, "application/json", R"({"error": {"status": 409, "field": "name", "message": "vm web1 already exists"}})"});
    EXPECT_EQ(e.kind, ApiErrorKind::Refused);
    EXPECT_EQ(e.status, 409);
    EXPECT_EQ(e.field, "name");
    EXPECT_EQ(e.message, "vm web1 already exists");
    EXPECT_EQ(exit_code_for(e), 1);
}

TEST(ErrorFromResponse, FallsBackToTheStatusForOtherBodies) {
    EXPECT_EQ(error_from_response({502, "text/html", ""}).message, "corrald answered HTTP 502");
    EXPECT_EQ(error_from_response({500, "text/plain", "boom\n"}).message, "corrald answered HTTP 500: boom");
}

TEST(FormatError, PrefixesTheSubjectAndNamesTheField) {
    ApiError e{ApiErrorKind::Refused, "memory_mib must be a whole number of MiB from 64 to 16384", "memory_mib", 400, {}};
    EXPECT_EQ(format_error(e, "web1"),
              "corral: web1: memory_mib must be a whole number of MiB from 64 to 16384 (field memory_mib)");
    EXPECT_EQ(format_error(e, ""), "corral: memory_mib must be a whole number of MiB from 64 to 16384 (field memory_mib)");
    ApiError state{ApiErrorKind::Refused, "web1 is running; start needs stopped, crashed or failed", "", 409, {}};
    EXPECT_EQ(format_error(state, "web1"), "corral: web1 is running; start needs stopped, crashed or failed");
}

TEST(ExitCodes, FollowTheKind) {
    EXPECT_EQ(exit_code_for({ApiErrorKind::Unreachable, "", "", 0, ""}), 3);
    EXPECT_EQ(exit_code_for({ApiErrorKind::TaskFailed, "", "", 0, ""}), 4);
    EXPECT_EQ(exit_code_for({ApiErrorKind::Protocol, "", "", 0, ""}), 1);
}

TEST(Render, HostAndVmShowTheirFields) {
    const auto host = nlohmann::json::parse(R"json({"hostname": "h1", "version": "0.1.0", "cpus": 2, "memory_mib": 24000,
        "state_dir": "/var/lib/corral", "default_engine": "emulated",
        "engines": {"emulated": {"available": true, "reason": "qemu 7.2 (TCG)"},
                    "native": {"available": false, "reason": "no /dev/kvm on this host"}},
        "calibration": {"kvm": "absent", "ring0_loop_mips": 0.5, "reason": "no /dev/kvm"}})json");
    const std::string text = render(View::Host, host);
    EXPECT_NE(text.find("default engine:  emulated"), std::string::npos) << text;
    EXPECT_NE(text.find("engine native:   unavailable: no /dev/kvm on this host"), std::string::npos) << text;
    EXPECT_NE(text.find("memory:          23.4G"), std::string::npos) << text;

    const auto vm = nlohmann::json::parse(R"({"name": "web1", "state": "crashed", "state_reason": "exit 1",
        "vcpus": 1, "memory_mib": 256, "nics": [{"bridge": "br0", "mac": "52:54:00:12:34:56"}],
        "last_console": "Kernel panic"})");
    const std::string vm_text = render(View::Vm, vm);
    EXPECT_NE(vm_text.find("state:   crashed (exit 1)"), std::string::npos) << vm_text;
    EXPECT_NE(vm_text.find("nics:    bridge=br0,mac=52:54:00:12:34:56"), std::string::npos) << vm_text;
    EXPECT_NE(vm_text.find("engine:  -"), std::string::npos) << "missing fields show as -";
    EXPECT_NE(vm_text.find("last console lines:\nKernel panic\n"), std::string::npos) << vm_text;
}

TEST(Render, TaskErrorsMayBeStringsOrObjects) {
    EXPECT_EQ(task_error(nlohmann::json{{"error", "boom"}}), "boom");
    EXPECT_EQ(task_error(nlohmann::json{{"error", {{"message", "boom"}}}}), "boom");
    EXPECT_EQ(task_error(nlohmann::json{{"error", nullptr}}), "");
}

}  // namespace
}  // namespace corral::cli
