// corral: the command-line client. Everything it does goes through corrald's HTTP API.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/display.h"
#include "cli/runner.h"
#include "cli/endpoint.h"
#include "cli/transfer.h"

int main(int argc, char** argv) {
    using namespace corral::cli;
    // A closed pipe (corral vm list | head) should end us quietly, not with EPIPE errors.
    std::signal(SIGPIPE, SIG_DFL);

    const std::vector<std::string> args(argv + 1, argv + argc);
    ParseOutcome parsed = parse_command_line(args);
    std::cout << parsed.out;
    std::cerr << parsed.err;
    if (!parsed.invocation) return parsed.exit_code;
    const Invocation& invocation = *parsed.invocation;

    if (invocation.action == Action::Completion) {
        std::cout << invocation.completion_script;
        return 0;
    }
    auto endpoint = resolve_endpoint(invocation.endpoint);
    if (!endpoint) {
        std::cerr << "corral: " << endpoint.error().message() << "\nRun 'corral --help' for usage.\n";
        return 2;
    }
    switch (invocation.action) {
    case Action::Console: return run_console(*endpoint, invocation.subject, invocation.request.target);
    case Action::Events: return run_events(*endpoint, invocation.request.target, invocation.json);
    case Action::Edit: {
        ApiClient api(*endpoint);
        return run_edit(invocation, api, edit_in_editor, std::cout, std::cerr);
    }
    case Action::Screenshot: return run_screenshot(*endpoint, invocation);
    case Action::Vnc: return run_vnc(*endpoint, invocation);
    case Action::Call:
    case Action::Completion: break;
    }
    ApiClient api(*endpoint);
    WaitOptions wait;
    const bool terminal = isatty(STDERR_FILENO) != 0;
    wait.style = terminal ? ProgressStyle::Bar : ProgressStyle::Lines;
    // A remote corrald may not name files of its host: the file's bytes travel over HTTPS instead.
    if (invocation.transfer && endpoint->remote) return run_transfer(invocation, api, wait.style, std::cout, std::cerr);
    // On a terminal poll often enough for the bar to move; otherwise one long-poll per 30 s.
    wait.poll_seconds = terminal ? 1 : 30;
    return run_call(invocation, api, wait, std::cout, std::cerr);
}
