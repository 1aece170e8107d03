#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/api.h"
#include "cli/endpoint.h"

namespace corral::cli {

/// What kind of work a parsed command line asks for.
enum class Action {
    Call,        ///< one HTTP request; its answer is shown as `view`
    Console,     ///< attach the terminal to a VM's console WebSocket
    Events,      ///< print the event stream
    Completion,  ///< print a shell completion script
    Edit,        ///< `vm edit NAME` without flags: edit the VM's settings in $EDITOR
    Screenshot,  ///< `vm screenshot NAME FILE`: the screen as a PNG file
    Vnc,         ///< `vm vnc NAME`: a local TCP port relayed to the VM's VNC WebSocket
};

/// `vm screenshot` and `vm vnc` (cli/display.h).
struct DisplayCommand {
    std::string file;          ///< screenshot: where the PNG goes
    bool force = false;        ///< screenshot: replace an existing file
    std::string listen;        ///< vnc: HOST:PORT, loopback only ("" = 127.0.0.1, the first free port from 5900)
    bool view_only = false;    ///< vnc: the viewers' input is dropped by corrald
};

/// How an answer is shown to people (with --json the daemon's JSON is printed instead).
enum class View {
    None,
    Host,
    Capacity,
    CapacityPlan,  ///< POST /host/capacity/plan (cli/capacity_plan.h)
    Doctor,
    VmTable,
    Vm,
    Deleted,
    PoolTable,
    Pool,
    VolumeTable,
    Volume,
    ImageTable,
    Image,
    TaskTable,
    Task,
    TokenTable,
    TokenSecret,  ///< a new token: its secret alone, on a line (it is shown only once)
    NetworkTable,
    Network,
    LeaseTable,
    SecurityGroupTable,
    SecurityGroup,
    Trace,  ///< GET /networks/{name}/trace: its explanation, one line
    SnapshotTable,
    Snapshot,
    WhySlow,  ///< GET /vms/{name}/metrics's diagnosis: a line per cause, its fix under it
    BackupRepoTable,
    BackupRepo,
    BackupTable,
    Backup,
    BackupPruned,  ///< POST /backup-repositories/{name}/prune: the backups kept and removed
    AlarmTable,
    Alarm,
    BackupScheduleTable,  ///< GET /backup-schedules (and one schedule, POST's answer)
};

/// `volume import|export` between a local file and a volume. To a remote corrald (which may not
/// name files of its host) the bytes are streamed over HTTPS instead of the request naming a
/// host path; over the unix socket the request is used as it is.
struct Transfer {
    enum class Direction { Upload, Download };
    Direction direction = Direction::Upload;
    std::string file;    ///< the local file, as given
    std::string pool;
    std::string volume;
    std::string format;  ///< downloads: raw or qcow2
};

/// A parsed command line: the request it makes and how to show the result. Building this needs
/// no server, so each verb's mapping to HTTP is unit-tested.
struct Invocation {
    Action action = Action::Call;
    HttpRequest request;            ///< for Call (and the WebSocket target for Console/Events)
    View view = View::None;
    std::string subject;            ///< the object the command is about, prefixed to its errors
    std::string done_message;       ///< printed after success when not --json (e.g. "web1 started")
    bool json = false;              ///< --json: print the daemon's JSON
    bool raw = false;               ///< --raw: guest console bytes as they are (no escaping)
    bool wait = true;               ///< wait for a task the request starts (--no-wait: print its id)
    int wait_seconds = 0;           ///< task wait: give up after this many seconds (0: never)
    bool task_wait_only = false;    ///< `task wait ID`: the request is the task itself
    int countdown_seconds = 0;      ///< `vm stop|reboot`: the guest's time to shut down, counted down while waiting
    std::string countdown_ending = "killed";  ///< what happens to the VM when the countdown ends ("killed", "reset")
    bool done_from_task = false;    ///< say what the finished task reports happened, not done_message
    bool cancelling = false;        ///< `task cancel ID`: the task waited for is the one cancelled
    bool cancellable_task = false;  ///< the request starts a task `task cancel` can stop (copies, imports, exports)
    std::optional<std::uint64_t> grow_by;  ///< `volume resize NAME +SIZE`: the body's size_bytes is the current size plus this
    std::optional<std::string> socket;  ///< --socket (also in endpoint)
    EndpointFlags endpoint;         ///< --socket, --remote, --token, --ca-cert, --fingerprint
    std::string completion_script;  ///< for Completion
    std::optional<Transfer> transfer;  ///< `volume import|export`: streamed when the endpoint is remote
    DisplayCommand display;         ///< for Screenshot and Vnc

    /// Makes this a Call of `method` on `target` (with `body` unless null), shown as `view`,
    /// about `subject`, saying `done` after success: what each verb group's call() does.
    void set_call(std::string method, std::string target, View view, nlohmann::json body, std::string subject,
                  std::string done);
};

/// The outcome of parsing: either an invocation, or text to print and an exit code (help: 0,
/// usage errors: 2).
struct ParseOutcome {
    std::optional<Invocation> invocation;
    int exit_code = 0;
    std::string out;  ///< for stdout (help)
    std::string err;  ///< for stderr (usage errors)
};

/// Parses `corral`'s arguments (without argv[0]).
ParseOutcome parse_command_line(const std::vector<std::string>& args);

/// The exit code table, as `--help` and docs/cli.md print it.
extern const char* const k_exit_codes_help;

}  // namespace corral::cli
