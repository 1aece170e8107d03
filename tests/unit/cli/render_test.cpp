#include "cli/render.h"

#include <gtest/gtest.h>

#include <sstream>

#include "cli/snapshot_tree.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;

TEST(EscapeGuestText, TerminalControlsBecomeVisibleAndInert) {
    // OSC 52 (set the clipboard), a title, a clear screen, a cursor move: nothing reaches the
    // terminal.
    const std::string hostile = "\x1b]52;c;cm0gLXJmIH4K\x07\x1b]0;root@prod\x07\x1b[2J\x1b[H$ ";
    const std::string shown = escape_guest_text(hostile);
    EXPECT_EQ(shown, "^[]52;c;cm0gLXJmIH4K^G^[]0;root@prod^G^[[2J^[[H$ ");
    EXPECT_EQ(shown.find('\x1b'), std::string::npos);
    EXPECT_EQ(shown.find('\x07'), std::string::npos);
}

TEST(EscapeGuestText, LinesTabsAndUtf8StayAsTheyAre) {
    EXPECT_EQ(escape_guest_text("login: \tok\r\nnext line\n"), "login: \tok\nnext line\n");
    EXPECT_EQ(escape_guest_text("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
    EXPECT_EQ(escape_guest_text("a\rb\x7f"), "a^Mb^?");
}

TEST(EscapeGuestText, C1ControlsAndInvalidBytesAreEscaped) {
    // U+009B is an 8-bit CSI; a lone 0x9b byte or 0xff is not UTF-8 at all.
    const std::string csi8 = "\xc2\x9b", lone = "\x9b";
    EXPECT_EQ(escape_guest_text(csi8 + "2J"), "\\u009b2J");
    EXPECT_EQ(escape_guest_text(lone + "2J\xff"), "\\x9b2J\\xff");
    EXPECT_EQ(escape_guest_text("\xc0\x9b"), "\\xc0\\x9b");  // an overlong form
}

TEST(RenderSnapshots, TableAndFields) {
    const json snapshot = {{"vm", "web1"},           {"name", "s1"},        {"description", "before"},
                           {"kind", "memory"},       {"engine", "native"},  {"status", "ready"},
                           {"size_bytes", 2097152},  {"created_at", "2026-12-06T07:30:00Z"}};
    const std::string table = render(View::SnapshotTable, json::array({snapshot}));
    EXPECT_NE(table.find("NAME"), std::string::npos) << table;
    EXPECT_NE(table.find("s1"), std::string::npos) << table;
    EXPECT_NE(table.find("memory"), std::string::npos) << table;
    EXPECT_NE(table.find("before"), std::string::npos) << table;
    const std::string fields = render(View::Snapshot, snapshot);
    EXPECT_NE(fields.find("native"), std::string::npos) << fields;
    EXPECT_NE(fields.find("ready"), std::string::npos) << fields;
}

TEST(RenderWhySlow, EachCauseALineWithItsFixUnderIt) {
    const json answer = {{"vm", "web1"},
                         {"diagnosis",
                          {{"window_seconds", 300},
                           {"causes",
                            json::array({json{{"cause", "cpu_cap"}, {"level", "problem"},
                                              {"verdict", "held back by its CPU cap (cpu_max 10%, 0.1 of a CPU) 85% of the time"},
                                              {"fix", "raise cpu_max (corral vm edit web1 --cpu-max 20%)"}},
                                         json{{"cause", "disk_read"}, {"level", "ok"}, {"verdict", "disk reads take 2 ms"},
                                              {"fix", ""}}})}}}};
    EXPECT_EQ(render(View::WhySlow, answer),
              "web1 over the last 5 minutes:\n"
              "  problem  held back by its CPU cap (cpu_max 10%, 0.1 of a CPU) 85% of the time\n"
              "           fix: raise cpu_max (corral vm edit web1 --cpu-max 20%)\n"
              "  ok       disk reads take 2 ms\n");
    EXPECT_NE(render(View::WhySlow, json{{"vm", "web1"}}).find("no diagnosis"), std::string::npos);
}

TEST(RenderBalloon, TargetActualAndTheGuestsMemory) {
    // As corrald sends it (non-negative numbers parse as unsigned).
    const json balloon = json::parse(R"({"memory_mib": 256, "target_mib": 128, "actual_mib": 130, "inflated_mib": 126,
        "guest_memory_free_bytes": 41943040, "guest_memory_available_bytes": 52428800,
        "guest_memory_total_bytes": 209715200})");
    EXPECT_EQ(render(View::Balloon, balloon),
              "balloon: target 128M, actual 130M (126M given back)\n"
              "guest:   free 40M, available 50M of 200M\n");
    json no_stats = balloon;
    no_stats["guest_memory_total_bytes"] = nullptr;
    EXPECT_NE(render(View::Balloon, no_stats).find("guest:   -"), std::string::npos);
    // vm show of a stopped VM: no balloon.
    EXPECT_NE(render(View::Vm, json{{"name", "web1"}, {"balloon", nullptr}}).find("balloon: -\nguest:   -\n"),
              std::string::npos);
    json kept = balloon;
    kept["kept"] = true;
    EXPECT_NE(render(View::Balloon, kept).find("balloon: target 128M, actual 130M (126M given back), kept\n"),
              std::string::npos);
    // A stopped VM with a kept target: what its next start applies.
    EXPECT_NE(render(View::Vm, json{{"name", "web1"}, {"balloon", nullptr}, {"balloon_target_mib", 128u}})
                  .find("balloon: target 128M, kept, applied at start\n"),
              std::string::npos);
    const json stopped = json::parse(R"({"memory_mib": 256, "target_mib": 128, "kept": true, "actual_mib": null,
        "inflated_mib": null, "guest_memory_free_bytes": null, "guest_memory_available_bytes": null,
        "guest_memory_total_bytes": null})");
    EXPECT_EQ(render(View::Balloon, stopped), "balloon: target 128M, kept, applied at start\nguest:   -\n");
}

TEST(RenderSnapshots, TheListIsATreeWithTheCurrentOneMarked) {
    auto snapshot = [](const char* name, json parent, bool current = false) {
        return json{{"name", name}, {"parent", parent}, {"current", current}, {"kind", "disk"},
                    {"status", "ready"}, {"size_bytes", 0}};
    };
    // Oldest first, as the API lists them: a, b (from a), c (from b), d (from a), e (a root).
    const json list = json::array({snapshot("a", nullptr), snapshot("b", "a"), snapshot("c", "b", true),
                                   snapshot("d", "a"), snapshot("e", nullptr)});
    const std::string table = render(View::SnapshotTable, list);
    std::vector<std::string> names;
    std::istringstream lines(table);
    std::string line;
    std::getline(lines, line);  // the header
    while (std::getline(lines, line)) names.push_back(line.substr(0, line.find("  disk")));
    std::vector<std::string> expected = {"a", "`- b", "  `- c (current)", "`- d", "e"};
    ASSERT_EQ(names.size(), expected.size()) << table;
    for (size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(names[i].substr(0, names[i].find_last_not_of(' ') + 1), expected[i]) << table;
    }
    const std::string fields = render(View::Snapshot, snapshot("c", "b", true));
    EXPECT_NE(fields.find("parent"), std::string::npos) << fields;
    EXPECT_NE(fields.find("yes"), std::string::npos) << fields;
}

TEST(SnapshotTree, AMissingParentOrACycleLosesNoSnapshot) {
    const json list = json::array({json{{"name", "x"}, {"parent", "gone"}}, json{{"name", "p"}, {"parent", "q"}},
                                   json{{"name", "q"}, {"parent", "p"}}, json{{"name", "self"}, {"parent", "self"}}});
    auto rows = snapshot_tree(list);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ((*rows[0].snapshot)["name"], "x");
    EXPECT_EQ(rows[0].depth, 0u);
    EXPECT_TRUE(snapshot_tree(json::object()).empty());
}

TEST(RenderVm, LastConsoleIsEscapedUnlessRaw) {
    json vm = {
        {"name", "web1"}, {"state", "running"}, {"last_console", "\x1b]52;c;eA==\x07ok\r\n"}};
    const std::string escaped = render(View::Vm, vm);
    EXPECT_NE(escaped.find("last console lines:\n^[]52;c;eA==^Gok\n"), std::string::npos)
        << escaped;
    EXPECT_EQ(escaped.find('\x1b'), std::string::npos);
    const std::string raw = render(View::Vm, vm, GuestText::Raw);
    EXPECT_NE(raw.find("\x1b]52;c;eA==\x07ok\r\n"), std::string::npos);
}

TEST(RenderVm, UptimeRestartsAndTheLastCrash) {
    json vm = {{"name", "web1"},         {"state", "running"},       {"restart_policy", "on-failure"},
               {"started_at", "2026-12-06T07:00:00Z"}, {"uptime_seconds", 3725}, {"restarts", 1},
               {"last_crash", "killed by signal 9 (SIGKILL)"}};
    const std::string out = render(View::Vm, vm);
    EXPECT_NE(out.find("uptime:  1 h 2 min (since 2026-12-06T07:00:00Z)\n"), std::string::npos) << out;
    EXPECT_NE(out.find("restart: on-failure, restarted 1 time (last crash: killed by signal 9 (SIGKILL))\n"),
              std::string::npos)
        << out;
    json stopped = {{"name", "web1"}, {"state", "stopped"}, {"restart_policy", "always"}, {"started_at", nullptr},
                    {"uptime_seconds", nullptr}, {"restarts", 0}, {"last_crash", nullptr}};
    const std::string down = render(View::Vm, stopped);
    EXPECT_NE(down.find("uptime:  -\n"), std::string::npos) << down;
    EXPECT_NE(down.find("restart: always, restarted 0 times\n"), std::string::npos) << down;
    json never = {{"name", "web1"}, {"state", "stopped"}, {"restart_policy", "no"}, {"restarts", 0}};
    EXPECT_NE(render(View::Vm, never).find("restart: no\n"), std::string::npos) << render(View::Vm, never);
}

TEST(RenderVm, TheLimitsThatAreSet) {
    // Unsigned, as numbers parsed from the API's JSON are.
    json vm = {{"name", "web1"},
               {"memory_mib", 512u},
               {"limits",
                {{"cpu_weight", 300}, {"cpu_max_percent", 50}, {"memory_overhead_mib", 256u}, {"memory_max_mib", 768u},
                 {"io_weight", 0}, {"host_cpus", "0-1"}, {"vcpu_pins", "1"}}}};
    const std::string out = render(View::Vm, vm);
    EXPECT_NE(out.find("limits:  cpu weight 300, cpu max 50%, memory max 768M (512M + 256M overhead), host cpus 0-1, "
                       "vcpu pins 1\n"),
              std::string::npos)
        << out;
    json none = {{"name", "web1"},
                 {"limits", {{"cpu_weight", 0}, {"cpu_max_percent", 0}, {"memory_overhead_mib", 0},
                             {"memory_max_mib", nullptr}, {"io_weight", 0}, {"host_cpus", ""}}}};
    EXPECT_NE(render(View::Vm, none).find("limits:  none\n"), std::string::npos) << render(View::Vm, none);
}

TEST(RenderHost, TheCgroupVersion) {
    json host = {{"hostname", "h1"}, {"cgroups", {{"version", "v1"}, {"note", "v1 hierarchies without: blkio"}}}};
    EXPECT_NE(render(View::Host, host).find("cgroups:        v1 (v1 hierarchies without: blkio)\n"), std::string::npos)
        << render(View::Host, host);
}

}  // namespace
}  // namespace corral::cli
