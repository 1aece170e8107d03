#include "cli/runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>

#include <fmt/format.h>

#include "base/api_path.h"
#include "cli/cli_terms.h"
#include "cli/interrupt_notice.h"
#include "cli/render.h"

namespace corral::cli {

namespace {

using json = nlohmann::json;

bool finished(const json& task) {
    const std::string status = task.value("status", "");
    return status == "succeeded" || status == "failed" || status == "cancelled";
}

/// What Ctrl-C says while corral waits for task `id`: the task goes on, how to wait for it again
/// and, for a copy, import or export, how to stop it.
std::string interrupt_notice(const std::string& id, bool cancellable) {
    std::string notice = fmt::format(
        "\ncorral: stopped waiting; task {} goes on in corrald. Wait for it again with: corral task wait {}\n", id, id);
    if (cancellable)
        notice += fmt::format("corral: to stop it (what it made is removed): corral task cancel {}\n", id);
    return notice;
}

void draw(const json& task, ProgressStyle style, std::string& last, std::ostream& progress, int countdown_left,
          const std::string& ending) {
    const double fraction = task.contains("progress") && task["progress"].is_number() ? task["progress"].get<double>() : 0.0;
    const int percent = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 100));
    std::string message = task.contains("message") && task["message"].is_string() ? task["message"].get<std::string>() : "";
    // `vm stop|reboot`: while corrald waits for the guest, count down to the kill or reset (a bar
    // redraws each second; plain lines say it once, not every second).
    if (countdown_left >= 0 && message.rfind("waiting for the guest", 0) == 0)
        message += style == ProgressStyle::Bar ? fmt::format(": {} s left, then it is {}", countdown_left, ending)
                                               : fmt::format(", then it is {}", ending);
    const std::string label = fmt::format("{} {}", task.value("kind", "task"), task.value("target", ""));
    if (style == ProgressStyle::Bar) {
        constexpr int k_width = 30;
        const int filled = percent * k_width / 100;
        progress << fmt::format("\r\033[K{} [{}{}] {:3}% {}", label, std::string(filled, '#'),
                                std::string(k_width - filled, '.'), percent, message)
                 << std::flush;
    } else if (style == ProgressStyle::Lines) {
        std::string line = fmt::format("{}: {}% {}", label, percent, message);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        if (line != last) progress << line << '\n' << std::flush;
        last = line;
    }
}

void print_json(const json& value, std::ostream& out) { out << value.dump(2) << '\n'; }

}  // namespace

ApiResult<json> wait_for_task(Api& api, const std::string& id, const WaitOptions& options, std::ostream& progress) {
    const auto start = std::chrono::steady_clock::now();
    std::string last;
    bool drew = false;
    const std::string target = api_path(fmt::format("/tasks/{}?wait={}", id, options.poll_seconds));
    for (;;) {
        json task = TRY(api.call(HttpRequest{"GET", target, std::nullopt}));
        if (!task.is_object())
            return api_fail(ApiErrorKind::Protocol, fmt::format("corrald's answer for task {} is not a task", id));
        const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
        const int countdown_left = options.countdown_seconds > 0
                                       ? std::max(0, options.countdown_seconds - static_cast<int>(elapsed.count()))
                                       : -1;
        if (!finished(task) || drew) {
            draw(task, options.style, last, progress, countdown_left, options.countdown_ending);
            drew = true;
        }
        if (finished(task)) {
            if (drew && options.style == ProgressStyle::Bar) progress << '\n' << std::flush;
            if (task.value("status", "") == "failed") {
                const std::string error = task_error(task);
                return api_fail(ApiErrorKind::TaskFailed,
                                fmt::format("task {} ({}) failed: {}", id, task.value("kind", "?"),
                                            error.empty() ? "no reason given" : error));
            }
            if (task.value("status", "") == "cancelled" && !options.cancelling)
                return api_fail(ApiErrorKind::TaskFailed,
                                fmt::format("task {} ({}) was cancelled; nothing of it was kept", id,
                                            task.value("kind", "?")));
            return task;
        }
        const auto waited = std::chrono::steady_clock::now() - start;
        if (options.give_up_after > 0 && waited >= std::chrono::seconds(options.give_up_after)) {
            if (drew && options.style == ProgressStyle::Bar) progress << '\n';
            return api_fail(ApiErrorKind::Protocol,
                            fmt::format("task {} is still running after {} s", id, options.give_up_after));
        }
    }
}

int report_error(const Invocation& invocation, const ApiError& error, std::ostream& err) {
    const CliError said = in_cli_terms(error, invocation.request);
    const int code = exit_code_for(said.error);
    std::string line = format_error(said.error, invocation.subject);
    if (invocation.json) {
        static constexpr std::string_view k_prefix = "corral: ";
        if (line.rfind(k_prefix, 0) == 0) line.erase(0, k_prefix.size());
        err << error_json(line, said, code) << '\n';
    } else {
        err << line << '\n';
    }
    return code;
}

int run_call(const Invocation& invocation, Api& api, const WaitOptions& options, std::ostream& out,
             std::ostream& err) {
    auto report = [&](const ApiError& error) { return report_error(invocation, error, err); };

    if (invocation.task_wait_only) {
        WaitOptions wait = options;
        wait.give_up_after = invocation.wait_seconds;
        const InterruptNotice notice(interrupt_notice(invocation.subject, false));
        auto task = wait_for_task(api, invocation.subject, wait, err);
        if (!task) return report(task.error());
        if (invocation.json)
            print_json(*task, out);
        else
            out << describe_task(*task) << '\n';
        return 0;
    }

    HttpRequest request = invocation.request;
    if (invocation.grow_by) {
        // `volume resize NAME +SIZE`: the new size is the current one plus SIZE.
        static constexpr std::string_view k_resize = "/resize";
        const std::string volume_target = request.target.substr(0, request.target.size() - k_resize.size());
        auto volume = api.call(HttpRequest{"GET", volume_target, std::nullopt});
        if (!volume) return report(volume.error());
        if (!volume->is_object() || !volume->contains("size_bytes") || !(*volume)["size_bytes"].is_number_unsigned())
            return report(ApiError{ApiErrorKind::Protocol, "corrald's answer does not give the volume's size", {}, 0, {}});
        request.body = json{{"size_bytes", (*volume)["size_bytes"].get<std::uint64_t>() + *invocation.grow_by}};
    }
    auto response = api.send(request);
    if (!response) return report(response.error());
    if (response->status < 200 || response->status >= 300) return report(error_from_response(*response));

    // Plain text answers are guest console output (console?tail=N): escaped, unless --raw.
    if (response->content_type.rfind("text/plain", 0) == 0) {
        const std::string body = invocation.raw ? response->body : escape_guest_text(response->body);
        out << body;
        if (!body.empty() && body.back() != '\n') out << '\n';
        return 0;
    }
    json answer = json::parse(response->body.empty() ? "null" : response->body, nullptr, false);
    if (answer.is_discarded()) {
        return report(ApiError{ApiErrorKind::Protocol,
                               fmt::format("corrald sent invalid JSON for {} {}", invocation.request.method,
                                           invocation.request.target),
                               {}, 0, {}});
    }

    // 202 {"task": id}: the work goes on in the daemon.
    if (response->status == 202 && answer.is_object() && answer.contains("task") && answer["task"].is_string()) {
        const std::string id = answer["task"].get<std::string>();
        if (!invocation.wait) {
            if (invocation.json)
                print_json(answer, out);
            else
                out << id << '\n';
            return 0;
        }
        // Ctrl-C ends the wait, not the task: say so, how to wait again and how to cancel.
        const InterruptNotice notice(
            interrupt_notice(id, invocation.cancellable_task || invocation.cancelling));
        WaitOptions wait = options;
        wait.countdown_seconds = invocation.countdown_seconds;
        wait.countdown_ending = invocation.countdown_ending;
        wait.cancelling = invocation.cancelling;
        auto task = wait_for_task(api, id, wait, err);
        if (!task) return report(task.error());
        if (invocation.cancelling) {
            const std::string what = fmt::format("task {} ({} {})", id, task->value("kind", "?"), task->value("target", ""));
            if (invocation.json)
                print_json(*task, out);
            else if (task->value("status", "") == "cancelled")
                out << what << " cancelled; nothing of it was kept\n";
            else
                out << what << " " << task->value("status", "") << " before it could be cancelled\n";
            return 0;
        }
        std::string happened = task->value("message", "");
        if (invocation.countdown_seconds >= 0 && happened == invocation.subject + " killed after the timeout")
            happened = fmt::format("{} killed: its guest did not shut down within {} s", invocation.subject,
                                   invocation.countdown_seconds);
        else if (happened == invocation.subject + " shut down")
            happened += " (its guest powered off)";
        if (invocation.json)
            print_json(*task, out);
        else if (invocation.done_from_task && !happened.empty())
            out << happened << '\n';
        else if (!invocation.done_message.empty())
            out << invocation.done_message << '\n';
        return 0;
    }

    // `corral doctor` says by its exit code how bad what it found is, with --json too.
    const int status = invocation.view == View::Doctor ? doctor_exit_code(answer) : 0;
    if (invocation.json) {
        if (!answer.is_null()) print_json(answer, out);
        return status;
    }
    if (!invocation.done_message.empty())
        out << invocation.done_message << '\n';
    else
        out << render(invocation.view, answer, invocation.raw ? GuestText::Raw : GuestText::Escaped);
    return status;
}

int run_edit(const Invocation& invocation, Api& api,
             const std::function<ApiResult<std::string>(const std::string&)>& edit, std::ostream& out,
             std::ostream& err) {
    auto report = [&](const ApiError& error) { return report_error(invocation, error, err); };
    auto vm = api.call(HttpRequest{"GET", invocation.request.target, std::nullopt});
    if (!vm) return report(vm.error());
    // The settings PATCH accepts (docs/api.md); everything else is read-only.
    static constexpr const char* k_editable[] = {"vcpus", "memory_mib", "restart_policy", "cmdline", "nics", "limits",
                                                 "display"};
    json settings = json::object();
    for (const char* key : k_editable)
        if (vm->contains(key)) settings[key] = (*vm)[key];
    // What the memory cap comes to is shown, not set.
    if (settings.contains("limits") && settings["limits"].is_object()) settings["limits"].erase("memory_max_mib");

    // A mistake in the JSON reopens the editor on the text as it was, with the error on top in `#`
    // lines (blanked before parsing, so the error's line numbers match the editor's); saving it
    // unchanged gives up.
    std::string text = settings.dump(2) + "\n";
    json edited;
    for (;;) {
        auto edited_text = edit(text);
        if (!edited_text) return report(edited_text.error());
        std::string body;
        std::istringstream lines(*edited_text);
        for (std::string line; std::getline(lines, line);) body += (line.rfind('#', 0) == 0 ? "" : line) + "\n";
        std::string problem;
        try {
            edited = json::parse(body);
            if (!edited.is_object()) problem = "the settings must be one JSON object: { \"key\": value, ... }";
        } catch (const json::parse_error& error) {
            problem = error.what();
            if (const auto bracket = problem.find("] "); problem.rfind("[json.exception", 0) == 0 && bracket != std::string::npos)
                problem.erase(0, bracket + 2);
        }
        if (problem.empty()) break;
        if (*edited_text == text)
            return report(ApiError{ApiErrorKind::BadValue,
                                   fmt::format("the edited settings are not valid JSON ({}); nothing changed", problem),
                                   {}, 0, {}});
        std::string kept;
        std::istringstream again(*edited_text);
        for (std::string line; std::getline(again, line);)
            if (line.rfind("# corral:", 0) != 0) kept += line + "\n";
        text = fmt::format("# corral: {}\n# corral: fix it and save, or save it unchanged to give up (these lines are ignored)\n{}",
                           problem, kept);
    }
    json changes = json::object();
    for (const auto& [key, value] : edited.items())
        if (!settings.contains(key) || settings[key] != value) changes[key] = value;
    if (changes.empty()) {
        out << "no changes to " << invocation.subject << '\n';
        return 0;
    }
    auto updated = api.call(HttpRequest{"PATCH", invocation.request.target, changes});
    if (!updated) return report(updated.error());
    if (invocation.json)
        print_json(*updated, out);
    else
        out << invocation.done_message << '\n';
    return 0;
}

ApiResult<std::string> edit_in_editor(const std::string& text) {
    char path[] = "/tmp/corral-edit-XXXXXX.json";
    const int fd = mkstemps(path, 5);
    if (fd < 0) return api_fail(ApiErrorKind::Protocol, "cannot create a temporary file to edit");
    struct Remove {
        const char* path;
        ~Remove() { unlink(path); }
    } remove{path};
    const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    if (!written) return api_fail(ApiErrorKind::Protocol, fmt::format("cannot write {}", path));

    const char* editor = std::getenv("VISUAL");
    if (editor == nullptr || *editor == '\0') editor = std::getenv("EDITOR");
    if (editor == nullptr || *editor == '\0') editor = "vi";
    // The editor may be a command with arguments ("code --wait"), as git allows.
    const std::string command = fmt::format("{} '{}'", editor, path);
    const int status = std::system(command.c_str());
    if (status != 0)
        return api_fail(ApiErrorKind::Protocol, fmt::format("the editor ({}) failed; nothing changed", editor));
    std::ifstream in(path);
    std::stringstream edited;
    edited << in.rdbuf();
    return edited.str();
}

}  // namespace corral::cli
