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
#include "cli/render.h"

namespace corral::cli {

namespace {

using json = nlohmann::json;

bool finished(const json& task) {
    const std::string status = task.value("status", "");
    return status == "succeeded" || status == "failed";
}

void draw(const json& task, ProgressStyle style, std::string& last, std::ostream& progress) {
    const double fraction = task.contains("progress") && task["progress"].is_number() ? task["progress"].get<double>() : 0.0;
    const int percent = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 100));
    const std::string message = task.contains("message") && task["message"].is_string() ? task["message"].get<std::string>() : "";
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
        if (!finished(task) || drew) {
            draw(task, options.style, last, progress);
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

int run_call(const Invocation& invocation, Api& api, const WaitOptions& options, std::ostream& out,
             std::ostream& err) {
    auto report = [&](const ApiError& error) {
        err << format_error(error, invocation.subject) << '\n';
        return exit_code_for(error);
    };

    if (invocation.task_wait_only) {
        WaitOptions wait = options;
        wait.give_up_after = invocation.wait_seconds;
        auto task = wait_for_task(api, invocation.subject, wait, err);
        if (!task) return report(task.error());
        if (invocation.json)
            print_json(*task, out);
        else
            out << describe_task(*task) << '\n';
        return 0;
    }

    auto response = api.send(invocation.request);
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
        auto task = wait_for_task(api, id, options, err);
        if (!task) return report(task.error());
        if (invocation.json)
            print_json(*task, out);
        else if (!invocation.done_message.empty())
            out << invocation.done_message << '\n';
        return 0;
    }

    if (invocation.json) {
        if (!answer.is_null()) print_json(answer, out);
        return 0;
    }
    if (!invocation.done_message.empty())
        out << invocation.done_message << '\n';
    else
        out << render(invocation.view, answer, invocation.raw ? GuestText::Raw : GuestText::Escaped);
    return 0;
}

int run_edit(const Invocation& invocation, Api& api,
             const std::function<ApiResult<std::string>(const std::string&)>& edit, std::ostream& out,
             std::ostream& err) {
    auto report = [&](const ApiError& error) {
        err << format_error(error, invocation.subject) << '\n';
        return exit_code_for(error);
    };
    auto vm = api.call(HttpRequest{"GET", invocation.request.target, std::nullopt});
    if (!vm) return report(vm.error());
    // The settings PATCH accepts (docs/api.md); everything else is read-only.
    static constexpr const char* k_editable[] = {"vcpus", "memory_mib", "restart_policy", "cmdline", "nics"};
    json settings = json::object();
    for (const char* key : k_editable)
        if (vm->contains(key)) settings[key] = (*vm)[key];

    auto edited_text = edit(settings.dump(2) + "\n");
    if (!edited_text) return report(edited_text.error());
    const json edited = json::parse(*edited_text, nullptr, false);
    if (edited.is_discarded() || !edited.is_object())
        return report(ApiError{ApiErrorKind::Protocol, "the edited settings are not a JSON object; nothing changed",
                               {}, 0, {}});
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
