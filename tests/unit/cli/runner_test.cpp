#include "cli/runner.h"

#include <deque>
#include <sstream>

#include <gtest/gtest.h>

#include "cli/commands.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;

/// Answers requests from a script and records them.
class FakeApi final : public Api {
public:
    std::deque<ApiResult<HttpResponse>> answers;
    std::vector<HttpRequest> requests;

    void answer(int status, json body) { answers.push_back(HttpResponse{status, "application/json", body.dump()}); }

    ApiResult<HttpResponse> send(const HttpRequest& request) override {
        requests.push_back(request);
        if (answers.empty()) return api_fail(ApiErrorKind::Protocol, "no scripted answer");
        auto next = std::move(answers.front());
        answers.pop_front();
        return next;
    }
};

struct Outcome {
    int code;
    std::string out;
    std::string err;
};

Outcome run_cli(std::vector<std::string> args, FakeApi& api) {
    ParseOutcome parsed = parse_command_line(args);
    EXPECT_TRUE(parsed.invocation) << parsed.err;
    std::ostringstream out;
    std::ostringstream err;
    WaitOptions wait;
    wait.poll_seconds = 30;
    wait.style = ProgressStyle::Lines;
    const int code = run_call(*parsed.invocation, api, wait, out, err);
    return {code, out.str(), err.str()};
}

json vm(const char* name, const char* state) {
    return {{"name", name}, {"state", state}, {"engine", "emulated"}, {"vcpus", 2}, {"memory_mib", 512},
            {"disks", {{{"pool", "default"}, {"volume", std::string(name) + "-root"}, {"readonly", false}}}}};
}

TEST(RunCall, VmListIsATable) {
    FakeApi api;
    api.answer(200, json::array({vm("web1", "running"), vm("database", "stopped")}));
    Outcome r = run_cli({"vm", "list"}, api);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out,
              "NAME      STATE    ENGINE    CPUS  MEMORY  DISKS                  ADDRESSES\n"
              "web1      running  emulated  2     512M    default/web1-root      -\n"
              "database  stopped  emulated  2     512M    default/database-root  -\n");
}

TEST(RunCall, JsonPrintsTheDaemonsJson) {
    FakeApi api;
    api.answer(200, json::array({vm("web1", "running")}));
    Outcome r = run_cli({"vm", "list", "--json"}, api);
    EXPECT_EQ(json::parse(r.out), json::array({vm("web1", "running")}));
}

TEST(RunCall, RefusedValueNamesTheFlagAndExitsTwo) {
    FakeApi api;
    api.answer(400, json{{"error", {{"status", 400}, {"field", "memory_mib"},
                                    {"message", "memory_mib must be a whole number of MiB from 64 to 16384"}}}});
    Outcome r = run_cli({"vm", "create", "web1", "--image", "default", "--memory", "32M"}, api);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err, "corral: web1: --memory must be a whole number of MiB from 64 to 16384\n");
    EXPECT_EQ(r.out, "");
}

TEST(RunCall, ConflictExitsOneAndJsonErrorsAreJson) {
    FakeApi api;
    api.answer(409, json{{"error", {{"status", 409}, {"field", "name"}, {"message", "a VM named web1 already exists"}}}});
    Outcome r = run_cli({"vm", "create", "web1", "--image", "default", "--json"}, api);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(json::parse(r.err), (json{{"error", {{"message", "a VM named web1 already exists"}, {"status", 409},
                                                    {"exit_code", 1}}}}));
}

TEST(RunCall, ActionWaitsForItsTaskByLongPolling) {
    FakeApi api;
    api.answer(202, json{{"task", "t-3"}});
    api.answer(200, json{{"id", "t-3"}, {"kind", "vm.start"}, {"target", "web1"}, {"status", "running"},
                         {"progress", 0.5}, {"message", "booting"}});
    api.answer(200, json{{"id", "t-3"}, {"kind", "vm.start"}, {"target", "web1"}, {"status", "succeeded"},
                         {"progress", 1.0}, {"error", nullptr}});
    Outcome r = run_cli({"vm", "start", "web1"}, api);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "web1 started\n");
    ASSERT_EQ(api.requests.size(), 3U);
    EXPECT_EQ(api.requests[1].target, "/api/v1/tasks/t-3?wait=30");
    EXPECT_NE(r.err.find("vm.start web1: 50% booting"), std::string::npos) << r.err;
}

TEST(RunCall, RebootCountsDownToAResetAndSaysWhatHappened) {
    FakeApi api;
    api.answer(202, json{{"task", "t-5"}});
    api.answer(200, json{{"id", "t-5"}, {"kind", "vm.reboot"}, {"target", "web1"}, {"status", "running"},
                         {"progress", 0.2}, {"message", "waiting for the guest to shut down"}});
    api.answer(200, json{{"id", "t-5"}, {"kind", "vm.reboot"}, {"target", "web1"}, {"status", "succeeded"},
                         {"progress", 1.0}, {"message", "web1 reset (the guest did not shut down in 60 s)"}});
    Outcome r = run_cli({"vm", "reboot", "web1", "--timeout", "60"}, api);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "web1 reset (the guest did not shut down in 60 s)\n");
    EXPECT_NE(r.err.find("waiting for the guest to shut down, then it is reset"), std::string::npos) << r.err;
}

TEST(RunCall, TaskCancelWaitsForTheCancelAndACancelledTaskWaitedForIsAnError) {
    FakeApi api;
    api.answer(202, json{{"task", "t-6"}});
    api.answer(200, json{{"id", "t-6"}, {"kind", "volume.clone"}, {"target", "default/big"}, {"status", "cancelled"},
                         {"progress", 0.4}, {"error", "cancelled on request"}});
    Outcome r = run_cli({"task", "cancel", "t-6"}, api);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "task t-6 (volume.clone default/big) cancelled; nothing of it was kept\n");
    EXPECT_EQ(api.requests[0].method, "POST");
    EXPECT_EQ(api.requests[0].target, "/api/v1/tasks/t-6/cancel");

    FakeApi waiting;
    waiting.answer(202, json{{"task", "t-7"}});
    waiting.answer(200, json{{"id", "t-7"}, {"kind", "volume.clone"}, {"target", "default/b"}, {"status", "cancelled"},
                             {"error", "cancelled on request"}});
    Outcome copy = run_cli({"volume", "clone", "default/a", "default/b", "--full"}, waiting);
    EXPECT_EQ(copy.code, 4);
    EXPECT_EQ(copy.err, "corral: default/b: task t-7 (volume.clone) was cancelled; nothing of it was kept\n");
}

TEST(RunCall, FailedTaskExitsFour) {
    FakeApi api;
    api.answer(202, json{{"task", "t-4"}});
    api.answer(200, json{{"id", "t-4"}, {"kind", "vm.start"}, {"target", "web1"}, {"status", "failed"},
                         {"error", "qemu-system-x86_64 exited with status 1"}});
    Outcome r = run_cli({"vm", "start", "web1"}, api);
    EXPECT_EQ(r.code, 4);
    EXPECT_EQ(r.err, "corral: web1: task t-4 (vm.start) failed: qemu-system-x86_64 exited with status 1\n");
}

TEST(RunCall, NoWaitPrintsTheTaskId) {
    FakeApi api;
    api.answer(202, json{{"task", "t-5"}});
    Outcome r = run_cli({"vm", "stop", "web1", "--no-wait"}, api);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "t-5\n");
    EXPECT_EQ(api.requests.size(), 1U);
}

TEST(RunCall, ConflictNamingTheStateIsNotRepeated) {
    FakeApi api;
    api.answer(409, json{{"error", {{"status", 409}, {"message", "web1 is running; start needs stopped, crashed or failed"}}}});
    Outcome r = run_cli({"vm", "start", "web1"}, api);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "corral: web1 is running; start needs stopped, crashed or failed\n");
}

TEST(RunCall, UnreachableExitsThree) {
    FakeApi api;
    api.answers.push_back(std::unexpected(ApiError{ApiErrorKind::Unreachable, "cannot reach corrald at /x.sock: No such file", {}, 0, "/x.sock"}));
    Outcome r = run_cli({"vm", "list"}, api);
    EXPECT_EQ(r.code, 3);
    EXPECT_EQ(r.err, "corral: cannot reach corrald at /x.sock: No such file\n");
}

TEST(RunCall, TaskWaitAndDeleteOutput) {
    FakeApi api;
    api.answer(200, json{{"id", "t-9"}, {"kind", "image.prepare"}, {"target", "default"}, {"status", "succeeded"}});
    Outcome wait = run_cli({"task", "wait", "t-9"}, api);
    EXPECT_EQ(wait.code, 0);
    EXPECT_EQ(wait.out, "task t-9 (image.prepare default) succeeded\n");
    EXPECT_EQ(api.requests[0].target, "/api/v1/tasks/t-9?wait=30");

    api.answer(200, json{{"deleted", "web1"}, {"volumes", {"web1-root"}}});
    Outcome del = run_cli({"vm", "delete", "web1", "--volumes"}, api);
    EXPECT_EQ(del.out, "deleted web1 and its volumes web1-root\n");
}

TEST(RunEdit, PatchesOnlyWhatChanged) {
    FakeApi api;
    api.answer(200, vm("web1", "stopped"));
    api.answer(200, vm("web1", "stopped"));
    ParseOutcome parsed = parse_command_line({"vm", "edit", "web1"});
    std::ostringstream out;
    std::ostringstream err;
    const int code = run_edit(
        *parsed.invocation, api,
        [](const std::string& text) -> ApiResult<std::string> {
            json settings = json::parse(text);
            EXPECT_FALSE(settings.contains("name")) << "only editable settings are offered";
            settings["vcpus"] = 4;
            return settings.dump();
        },
        out, err);
    EXPECT_EQ(code, 0) << err.str();
    ASSERT_EQ(api.requests.size(), 2U);
    EXPECT_EQ(api.requests[1], (HttpRequest{"PATCH", "/api/v1/vms/web1", json{{"vcpus", 4}}}));
    EXPECT_EQ(out.str(), "updated web1\n");
}

TEST(RunCall, ConsoleTailIsEscapedUnlessRaw) {
    const std::string printed = "\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2Jlogin: \r\n";
    FakeApi api;
    api.answers.push_back(HttpResponse{200, "text/plain; charset=utf-8", printed});
    Outcome escaped = run_cli({"vm", "console", "web1", "--tail", "5"}, api);
    EXPECT_EQ(escaped.code, 0);
    EXPECT_EQ(escaped.out, "^[]52;c;cm0gLXJmIH4K^G^[[2Jlogin: \n");
    api.answers.push_back(HttpResponse{200, "text/plain; charset=utf-8", printed});
    Outcome raw = run_cli({"vm", "console", "web1", "--tail", "5", "--raw"}, api);
    EXPECT_EQ(raw.code, 0);
    EXPECT_EQ(raw.out, printed);
}

}  // namespace
}  // namespace corral::cli
