#include "cli/commands.h"

#include <gtest/gtest.h>

#include "command_line_support.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;
using testing::parse;
using testing::request;

ParseOutcome parse_fails(std::vector<std::string> args) {
    ParseOutcome outcome = parse_command_line(args);
    EXPECT_FALSE(outcome.invocation.has_value());
    return outcome;
}

TEST(VmCommands, CreateWithEveryFlag) {
    const Invocation inv = parse({"vm", "create", "web1", "--image", "default", "--cpus", "2", "--memory", "1G",
                                  "--disk", "default/data", "--disk", "fast/logs:ro", "--nic",
                                  "bridge=br0,mac=52:54:00:00:00:01", "--nic", "tap=tap3", "--engine", "emulated",
                                  "--restart", "on-failure", "--cmdline", "quiet loglevel=3"});
    EXPECT_EQ(inv.action, Action::Call);
    EXPECT_EQ(inv.subject, "web1");
    EXPECT_EQ(inv.request, request("POST", "/api/v1/vms", json{
        {"name", "web1"}, {"image", "default"}, {"vcpus", 2}, {"memory_mib", 1024},
        {"disks", {{{"pool", "default"}, {"volume", "data"}, {"readonly", false}},
                   {{"pool", "fast"}, {"volume", "logs"}, {"readonly", true}}}},
        {"nics", {{{"bridge", "br0"}, {"mac", "52:54:00:00:00:01"}}, {{"tap", "tap3"}}}},
        {"engine", "emulated"}, {"restart_policy", "on-failure"}, {"cmdline", "quiet loglevel=3"}}));
}

TEST(VmCommands, CreateSendsOnlyWhatWasGiven) {
    EXPECT_EQ(parse({"vm", "create", "t1", "--image", "deb", "--cpus", "1", "--memory", "256M"}).request,
              request("POST", "/api/v1/vms", json{{"name", "t1"}, {"image", "deb"}, {"vcpus", 1}, {"memory_mib", 256}}));
    EXPECT_EQ(parse({"vm", "create", "t1", "--image", "default"}).request,
              request("POST", "/api/v1/vms", json{{"name", "t1"}, {"image", "default"}}));
}

TEST(VmCommands, CreateWithoutImageIsRefusedNamingWhatIsMissing) {
    ParseOutcome missing = parse_command_line({"vm", "create", "t1", "--disk", "data"});
    EXPECT_FALSE(missing.invocation);
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.err.find("t1 needs --image IMAGE"), std::string::npos) << missing.err;
}

TEST(Mistakes, UnknownVerbsAndFlagsSuggestTheNearest) {
    ParseOutcome strat = parse_command_line({"vm", "strat", "web1"});
    EXPECT_EQ(strat.exit_code, 2);
    EXPECT_NE(strat.err.find("unknown verb 'strat'; did you mean 'start'?"), std::string::npos) << strat.err;
    ParseOutcome destroy = parse_command_line({"vm", "destroy", "web1"});
    EXPECT_NE(destroy.err.find("did you mean 'delete'?"), std::string::npos) << destroy.err;
    ParseOutcome imge = parse_command_line({"vm", "create", "default", "--imge", "x"});
    EXPECT_EQ(imge.exit_code, 2);
    EXPECT_NE(imge.err.find("unknown flag --imge; did you mean --image?"), std::string::npos) << imge.err;
    EXPECT_EQ(parse({"vm", "ls"}).request, request("GET", "/api/v1/vms"));
    EXPECT_EQ(parse({"volume", "rm", "data"}).request, request("DELETE", "/api/v1/volumes/default/data"));
    EXPECT_EQ(parse({"image", "info", "default"}).request, request("GET", "/api/v1/images/default"));
    ParseOutcome help = parse_command_line({"help", "vm", "create"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("corral vm create web1 --image default"), std::string::npos) << help.out;
    EXPECT_NE(help.out.find("Global flags"), std::string::npos) << help.out;
}

TEST(VmCommands, ListShowAndGlobalFlagsAfterTheVerb) {
    Invocation list = parse({"vm", "list", "--json", "--socket", "/tmp/x.sock"});
    EXPECT_EQ(list.request, request("GET", "/api/v1/vms"));
    EXPECT_EQ(list.view, View::VmTable);
    EXPECT_TRUE(list.json);
    EXPECT_EQ(list.socket, "/tmp/x.sock");
    EXPECT_EQ(parse({"--json", "vm", "show", "web1"}).request, request("GET", "/api/v1/vms/web1"));
}

TEST(VmCommands, StateActions) {
    for (const char* action : {"start", "kill", "pause", "resume", "reboot", "reset"}) {
        Invocation inv = parse({"vm", action, "web1"});
        EXPECT_EQ(inv.request, request("PUT", "/api/v1/vms/web1/state", json{{"action", action}})) << action;
        EXPECT_TRUE(inv.wait);
    }
    EXPECT_EQ(parse({"vm", "stop", "web1"}).request, request("PUT", "/api/v1/vms/web1/state", json{{"action", "stop"}}));
    EXPECT_EQ(parse({"vm", "stop", "web1", "--timeout", "10"}).request,
              request("PUT", "/api/v1/vms/web1/state", json{{"action", "stop"}, {"timeout", 10}}));
    EXPECT_EQ(parse({"vm", "stop", "web1", "--force"}).request,
              request("PUT", "/api/v1/vms/web1/state", json{{"action", "kill"}}));
    EXPECT_FALSE(parse({"vm", "start", "web1", "--no-wait"}).wait);
    // reboot waits for the guest as stop does, counting down to a reset.
    Invocation reboot = parse({"vm", "reboot", "web1", "--timeout", "60"});
    EXPECT_EQ(reboot.request, request("PUT", "/api/v1/vms/web1/state", json{{"action", "reboot"}, {"timeout", 60}}));
    EXPECT_EQ(reboot.countdown_seconds, 60);
    EXPECT_EQ(reboot.countdown_ending, "reset");
    EXPECT_TRUE(reboot.done_from_task);
    EXPECT_EQ(parse({"vm", "reboot", "web1"}).countdown_seconds, 30);
    EXPECT_EQ(parse({"vm", "stop", "web1"}).countdown_ending, "killed");
    EXPECT_EQ(parse({"vm", "reset", "web1"}).countdown_seconds, 0);
}

TEST(TaskCommands, CancelPostsAndWaitsForTheCancelledTask) {
    Invocation cancel = parse({"task", "cancel", "t-7"});
    EXPECT_EQ(cancel.request, request("POST", "/api/v1/tasks/t-7/cancel", json::object()));
    EXPECT_TRUE(cancel.cancelling);
    EXPECT_TRUE(cancel.wait);
    // Copies, imports and exports can be cancelled: Ctrl-C while waiting says how.
    EXPECT_TRUE(parse({"volume", "clone", "default/a", "default/b", "--full"}).cancellable_task);
    EXPECT_FALSE(parse({"volume", "clone", "default/a", "default/b"}).cancellable_task);
    EXPECT_TRUE(parse({"volume", "export", "default/a", "/tmp/a.qcow2"}).cancellable_task);
    EXPECT_FALSE(parse({"vm", "start", "web1"}).cancellable_task);
}

TEST(VmCommands, DeleteConsoleEdit) {
    EXPECT_EQ(parse({"vm", "delete", "web1"}).request, request("DELETE", "/api/v1/vms/web1"));
    EXPECT_EQ(parse({"vm", "delete", "web1", "--volumes"}).request, request("DELETE", "/api/v1/vms/web1?volumes=true"));

    Invocation console = parse({"vm", "console", "web1"});
    EXPECT_EQ(console.action, Action::Console);
    EXPECT_EQ(console.request.target, "/api/v1/vms/web1/console");
    EXPECT_EQ(parse({"vm", "console", "web1", "--tail", "20"}).request,
              request("GET", "/api/v1/vms/web1/console?tail=20"));
    // `corral console NAME` is the same verb, for virsh habits.
    EXPECT_EQ(parse({"console", "web1"}).request.target, "/api/v1/vms/web1/console");
    EXPECT_EQ(parse({"console", "web1"}).action, Action::Console);

    EXPECT_EQ(parse({"vm", "edit", "web1", "--memory", "2G", "--cpus", "4", "--restart", "always"}).request,
              request("PATCH", "/api/v1/vms/web1", json{{"vcpus", 4}, {"memory_mib", 2048}, {"restart_policy", "always"}}));
    Invocation interactive = parse({"vm", "edit", "web1"});
    EXPECT_EQ(interactive.action, Action::Edit);
    EXPECT_EQ(interactive.request.target, "/api/v1/vms/web1");
}

TEST(VmCommands, Snapshots) {
    const Invocation take = parse({"vm", "snapshot", "create", "web1", "s1", "--description", "before the upgrade"});
    EXPECT_EQ(take.request,
              request("POST", "/api/v1/vms/web1/snapshots", json{{"name", "s1"}, {"description", "before the upgrade"}}));
    EXPECT_EQ(take.subject, "web1");
    EXPECT_EQ(take.done_message, "snapshot s1 of web1 taken");
    EXPECT_EQ(parse({"vm", "snapshot", "create", "web1", "s1"}).request,
              request("POST", "/api/v1/vms/web1/snapshots", json{{"name", "s1"}}));
    EXPECT_EQ(parse({"vm", "snapshot", "create", "web1", "s1", "--disk-only"}).request,
              request("POST", "/api/v1/vms/web1/snapshots", json{{"name", "s1"}, {"disk_only", true}}));
    EXPECT_EQ(parse({"vm", "snapshot", "list", "web1"}).request, request("GET", "/api/v1/vms/web1/snapshots"));
    EXPECT_EQ(parse({"vm", "snapshot", "list", "web1"}).view, View::SnapshotTable);
    EXPECT_EQ(parse({"vm", "snapshots", "web1"}).request, request("GET", "/api/v1/vms/web1/snapshots"));
    EXPECT_EQ(parse({"vm", "snapshot", "show", "web1", "s1"}).request, request("GET", "/api/v1/vms/web1/snapshots/s1"));
    for (const char* verb : {"revert", "restore", "rollback"}) {
        const Invocation revert = parse({"vm", "snapshot", verb, "web1", "s1"});
        EXPECT_EQ(revert.request, request("POST", "/api/v1/vms/web1/snapshots/s1/restore")) << verb;
        EXPECT_TRUE(revert.done_from_task) << verb;
    }
    EXPECT_EQ(parse({"vm", "snapshot", "delete", "web1", "s1"}).request,
              request("DELETE", "/api/v1/vms/web1/snapshots/s1"));
    EXPECT_EQ(parse_fails({"vm", "snapshot", "create", "web1"}).exit_code, 2);  // no snapshot name
}

TEST(PoolCommands, Map) {
    EXPECT_EQ(parse({"pool", "list"}).request, request("GET", "/api/v1/pools"));
    EXPECT_EQ(parse({"pool", "show", "fast"}).request, request("GET", "/api/v1/pools/fast"));
    EXPECT_EQ(parse({"pool", "create", "fast", "--path", "/srv/fast"}).request,
              request("POST", "/api/v1/pools", json{{"name", "fast"}, {"driver", "dir"}, {"path", "/srv/fast"}}));
    EXPECT_EQ(parse({"pool", "delete", "fast"}).request, request("DELETE", "/api/v1/pools/fast"));
    parse_fails({"pool", "create", "fast"});  // --path is required
}

TEST(VolumeCommands, Map) {
    EXPECT_EQ(parse({"volume", "list"}).request, request("GET", "/api/v1/volumes"));
    EXPECT_EQ(parse({"volume", "list", "--pool", "fast"}).request, request("GET", "/api/v1/volumes?pool=fast"));
    EXPECT_EQ(parse({"volume", "show", "fast/data"}).request, request("GET", "/api/v1/volumes/fast/data"));
    EXPECT_EQ(parse({"volume", "show", "data"}).request, request("GET", "/api/v1/volumes/default/data"));
    EXPECT_EQ(parse({"volume", "create", "fast/data", "--size", "10G"}).request,
              request("POST", "/api/v1/volumes", json{{"pool", "fast"}, {"name", "data"}, {"size_bytes", 10ULL << 30}}));
    EXPECT_EQ(parse({"volume", "create", "data", "--size", "1G", "--format", "raw"}).request,
              request("POST", "/api/v1/volumes",
                      json{{"pool", "default"}, {"name", "data"}, {"size_bytes", 1ULL << 30}, {"format", "raw"}}));
    EXPECT_EQ(parse({"volume", "clone", "default/img", "web1-root"}).request,
              request("POST", "/api/v1/volumes",
                      json{{"pool", "default"}, {"name", "web1-root"},
                           {"from", {{"pool", "default"}, {"volume", "img"}}}, {"linked", true}}));
    EXPECT_EQ(parse({"volume", "clone", "fast/img", "slow/copy", "--full"}).request,
              request("POST", "/api/v1/volumes",
                      json{{"pool", "slow"}, {"name", "copy"},
                           {"from", {{"pool", "fast"}, {"volume", "img"}}}, {"linked", false}}));
    EXPECT_EQ(parse({"volume", "resize", "fast/data", "20G"}).request,
              request("POST", "/api/v1/volumes/fast/data/resize", json{{"size_bytes", 20ULL << 30}}));
    EXPECT_EQ(parse({"volume", "delete", "fast/data"}).request, request("DELETE", "/api/v1/volumes/fast/data"));
    parse_fails({"volume", "show", "a/b/c"});
}

TEST(ImageTaskHostEventsCommands, Map) {
    EXPECT_EQ(parse({"image", "list"}).request, request("GET", "/api/v1/images"));
    EXPECT_EQ(parse({"image", "show", "default"}).request, request("GET", "/api/v1/images/default"));
    EXPECT_EQ(parse({"image", "prepare"}).request, request("POST", "/api/v1/images", json{{"name", "default"}}));
    EXPECT_EQ(parse({"image", "prepare", "other"}).request, request("POST", "/api/v1/images", json{{"name", "other"}}));
    EXPECT_EQ(parse({"image", "delete", "default"}).request, request("DELETE", "/api/v1/images/default"));
    EXPECT_EQ(parse({"task", "list"}).request, request("GET", "/api/v1/tasks"));
    EXPECT_EQ(parse({"task", "show", "t-17"}).request, request("GET", "/api/v1/tasks/t-17"));
    Invocation wait = parse({"task", "wait", "t-17", "--timeout", "5"});
    EXPECT_TRUE(wait.task_wait_only);
    EXPECT_EQ(wait.subject, "t-17");
    EXPECT_EQ(wait.wait_seconds, 5);
    EXPECT_EQ(parse({"host", "info"}).request, request("GET", "/api/v1/host"));
    Invocation events = parse({"events"});
    EXPECT_EQ(events.action, Action::Events);
    EXPECT_EQ(events.request.target, "/api/v1/events");
}

TEST(VmCommands, LimitsFlagsBecomeTheLimitsObject) {
    EXPECT_EQ(parse({"vm", "edit", "web1", "--cpu-weight", "300", "--cpu-max", "50%", "--memory-overhead", "256M",
                     "--io-weight", "200", "--host-cpus", "0-1", "--vcpu-pins", "1,0"})
                  .request,
              request("PATCH", "/api/v1/vms/web1",
                      json{{"limits",
                            {{"cpu_weight", 300}, {"cpu_max_percent", 50}, {"memory_overhead_mib", 256},
                             {"io_weight", 200}, {"host_cpus", "0-1"}, {"vcpu_pins", "1,0"}}}}));
    // 0 clears a limit; a bare number is a percentage too.
    EXPECT_EQ(parse({"vm", "edit", "web1", "--cpu-max", "0", "--memory-overhead", "0"}).request,
              request("PATCH", "/api/v1/vms/web1", json{{"limits", {{"cpu_max_percent", 0}, {"memory_overhead_mib", 0}}}}));
    ParseOutcome bad = parse_fails({"vm", "edit", "web1", "--cpu-max", "half"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("'half' is not a percentage"), std::string::npos) << bad.err;
}

TEST(UsageErrors, ExitTwoWithAMessage) {
    ParseOutcome bad_size = parse_fails({"vm", "create", "t1", "--memory", "12Q"});
    EXPECT_EQ(bad_size.exit_code, 2);
    EXPECT_NE(bad_size.err.find("invalid size '12Q'"), std::string::npos) << bad_size.err;
    EXPECT_NE(bad_size.err.find("corral vm create --help"), std::string::npos) << bad_size.err;

    EXPECT_EQ(parse_fails({"vm", "frobnicate"}).exit_code, 2);
    EXPECT_EQ(parse_fails({}).exit_code, 2);
    EXPECT_EQ(parse_fails({"vm", "start"}).exit_code, 2);
    EXPECT_EQ(parse_fails({"vm", "create", "t1", "--image", "i", "--restart", "sometimes"}).exit_code, 2);
    EXPECT_EQ(parse_fails({"vm", "create", "t1", "--nic", "speed=10"}).exit_code, 2);
    EXPECT_EQ(parse_fails({"vm", "create", "t1", "--disk", "a/b:rx"}).exit_code, 2);
    EXPECT_EQ(parse_fails({"vm", "create", "t1", "--memory", "1000K"}).exit_code, 2);
    EXPECT_EQ(parse_fails({"volume", "create", "d", "--size", "lots"}).exit_code, 2);
}

TEST(Help, ExitsZeroAndDocumentsExitCodes) {
    ParseOutcome help = parse_fails({"--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("Exit codes:"), std::string::npos);
    EXPECT_NE(help.out.find("3  cannot reach corrald"), std::string::npos);
    ParseOutcome vm_help = parse_fails({"vm", "create", "--help"});
    EXPECT_EQ(vm_help.exit_code, 0);
    EXPECT_NE(vm_help.out.find("--memory"), std::string::npos) << vm_help.out;
}

TEST(Completion, BashScriptCoversTheVerbs) {
    Invocation inv = parse({"completion", "bash"});
    EXPECT_EQ(inv.action, Action::Completion);
    EXPECT_NE(inv.completion_script.find("complete -F _corral corral"), std::string::npos);
    EXPECT_NE(inv.completion_script.find("\" vm\") opts=\"create list show start"), std::string::npos)
        << inv.completion_script;
    EXPECT_NE(inv.completion_script.find("--memory"), std::string::npos);
    EXPECT_EQ(parse_fails({"completion", "tcsh"}).exit_code, 2);
}

}  // namespace
}  // namespace corral::cli

namespace corral::cli {
namespace {

TEST(TokenCommands, CreateListDelete) {
    Invocation create = parse({"token", "create", "ci"});
    EXPECT_EQ(create.request, request("POST", "/api/v1/tokens", json{{"name", "ci"}}));
    EXPECT_EQ(create.view, View::TokenSecret);
    EXPECT_EQ(create.subject, "ci");
    Invocation list = parse({"token", "list"});
    EXPECT_EQ(list.request, request("GET", "/api/v1/tokens"));
    EXPECT_EQ(list.view, View::TokenTable);
    Invocation del = parse({"token", "delete", "ci"});
    EXPECT_EQ(del.request, request("DELETE", "/api/v1/tokens/ci"));
    EXPECT_EQ(del.done_message, "deleted token ci");
    const ParseOutcome missing = parse_fails({"token", "create"});
    EXPECT_EQ(missing.exit_code, 2);
}

TEST(RemoteFlags, GoIntoTheEndpointFlagsBeforeOrAfterTheVerb) {
    Invocation inv = parse({"--remote", "https://h1:8443", "vm", "list", "--token", "T", "--fingerprint", "AB"});
    EXPECT_EQ(inv.endpoint.remote, "https://h1:8443");
    EXPECT_EQ(inv.endpoint.token, "T");
    EXPECT_EQ(inv.endpoint.fingerprint, "AB");
    EXPECT_FALSE(inv.endpoint.ca_cert);
    EXPECT_FALSE(inv.endpoint.socket);
    Invocation ca = parse({"events", "--remote", "https://h1:8443", "--ca-cert", "/ca.pem"});
    EXPECT_EQ(ca.action, Action::Events);
    EXPECT_EQ(ca.endpoint.ca_cert, "/ca.pem");
}

TEST(VolumeCommands, ImportAndExportCarryTheLocalFileForARemoteCorrald) {
    const Invocation import = parse({"volume", "import", "fast/disk1", "/tmp/disk.qcow2"});
    EXPECT_EQ(import.request, request("POST", "/api/v1/volumes",
                                      json{{"pool", "fast"}, {"name", "disk1"}, {"import", "/tmp/disk.qcow2"}}));
    ASSERT_TRUE(import.transfer.has_value());
    EXPECT_EQ(import.transfer->direction, Transfer::Direction::Upload);
    EXPECT_EQ(import.transfer->file, "/tmp/disk.qcow2");
    EXPECT_EQ(import.transfer->pool, "fast");
    EXPECT_EQ(import.transfer->volume, "disk1");

    const Invocation exported = parse({"volume", "export", "--format", "raw", "disk1", "out.raw"});
    ASSERT_TRUE(exported.transfer.has_value());
    EXPECT_EQ(exported.transfer->direction, Transfer::Direction::Download);
    EXPECT_EQ(exported.transfer->file, "out.raw");
    EXPECT_EQ(exported.transfer->pool, "default");
    EXPECT_EQ(exported.transfer->format, "raw");
    EXPECT_EQ(parse({"volume", "export", "disk1", "out.qcow2"}).transfer->format, "qcow2");
    EXPECT_FALSE(parse({"volume", "list"}).transfer.has_value());
}

}  // namespace
}  // namespace corral::cli

namespace corral::cli {
namespace {

TEST(VmCommands, DisplayFlagOnCreateAndEdit) {
    EXPECT_EQ(parse({"vm", "create", "desk", "--image", "default", "--display", "1024x768"}).request,
              request("POST", "/api/v1/vms",
                      json{{"name", "desk"}, {"image", "default"}, {"display", {{"width", 1024}, {"height", 768}}}}));
    EXPECT_EQ(parse({"vm", "edit", "desk", "--display", "none"}).request,
              request("PATCH", "/api/v1/vms/desk", json{{"display", nullptr}}));
    for (const char* bad : {"1024", "x768", "1024x", "1024x768x2", "-1x5", "big"}) {
        ParseOutcome refused = parse_fails({"vm", "create", "desk", "--image", "default", "--display", bad});
        EXPECT_EQ(refused.exit_code, 2) << bad;
        EXPECT_NE(refused.err.find("WIDTHxHEIGHT such as 1024x768, or none"), std::string::npos) << refused.err;
    }
}

TEST(VmCommands, WhySlowReadsTheDiagnosis) {
    const Invocation why = parse({"vm", "why-slow", "web1"});
    EXPECT_EQ(why.request, request("GET", "/api/v1/vms/web1/metrics?step=86400"));
    EXPECT_EQ(why.view, View::WhySlow);
    parse_fails({"vm", "why-slow"});  // the VM is required
}

TEST(VmCommands, BalloonSetsOrShowsTheTarget) {
    const Invocation set = parse({"vm", "balloon", "web1", "128M"});
    EXPECT_EQ(set.request, request("PUT", "/api/v1/vms/web1/balloon", json{{"target_mib", 128}}));
    EXPECT_EQ(set.view, View::Balloon);
    EXPECT_EQ(parse({"vm", "balloon", "web1", "1G"}).request,
              request("PUT", "/api/v1/vms/web1/balloon", json{{"target_mib", 1024}}));
    EXPECT_EQ(parse({"vm", "balloon", "web1"}).request, request("GET", "/api/v1/vms/web1/balloon"));
    EXPECT_EQ(parse({"vm", "balloon", "web1", "--clear"}).request,
              request("PUT", "/api/v1/vms/web1/balloon", json{{"clear", true}}));
    EXPECT_EQ(parse_fails({"vm", "balloon", "web1", "128M", "--clear"}).exit_code, 2);  // one or the other
    ParseOutcome refused = parse_fails({"vm", "balloon", "web1", "lots"});
    EXPECT_EQ(refused.exit_code, 2);
    parse_fails({"vm", "balloon"});  // the VM is required
}

TEST(VmCommands, ScreenshotAndVnc) {
    const Invocation shot = parse({"vm", "screenshot", "desk", "out.png"});
    EXPECT_EQ(shot.action, Action::Screenshot);
    EXPECT_EQ(shot.request, request("GET", "/api/v1/vms/desk/screenshot"));
    EXPECT_EQ(shot.display.file, "out.png");
    EXPECT_FALSE(shot.display.force);
    EXPECT_TRUE(parse({"vm", "screenshot", "desk", "out.png", "--force"}).display.force);
    parse_fails({"vm", "screenshot", "desk"});  // FILE is required

    const Invocation vnc = parse({"vm", "vnc", "desk"});
    EXPECT_EQ(vnc.action, Action::Vnc);
    EXPECT_EQ(vnc.request.target, "/api/v1/vms/desk/vnc");
    EXPECT_EQ(vnc.display.listen, "");
    const Invocation watch = parse({"vm", "vnc", "desk", "--listen", "127.0.0.1:5911", "--view-only"});
    EXPECT_EQ(watch.request.target, "/api/v1/vms/desk/vnc?view_only=1");
    EXPECT_EQ(watch.display.listen, "127.0.0.1:5911");
}

}  // namespace
}  // namespace corral::cli
