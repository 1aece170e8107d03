#include "cli/transfer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <ostream>

#include <fmt/format.h>

#include "base/api_path.h"
#include "base/unique_fd.h"
#include "cli/render.h"
#include "cli/size.h"

namespace corral::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// Draws a transfer's progress like a task's (runner.cpp): a bar on a terminal, else a line per 10%.
class ProgressDrawer {
public:
    ProgressDrawer(std::string label, ProgressStyle style, std::ostream& out)
        : m_label(std::move(label)), m_style(style), m_out(out) {}

    void operator()(uint64_t done, uint64_t total) {
        const int percent = total ? int(done * 100 / total) : 0;
        const auto now = std::chrono::steady_clock::now();
        if (m_style == ProgressStyle::Bar) {
            if (done != total && now - m_last < std::chrono::milliseconds(100)) return;
            m_last = now;
            constexpr int k_width = 30;
            const int filled = percent * k_width / 100;
            m_out << fmt::format("\r\033[K{} [{}{}] {:3}% {} of {}", m_label, std::string(filled, '#'),
                                 std::string(k_width - filled, '.'), percent, format_size(done), format_size(total))
                  << std::flush;
            m_drew = true;
        } else if (m_style == ProgressStyle::Lines && percent / 10 != m_last_tenth) {
            m_last_tenth = percent / 10;
            m_out << fmt::format("{}: {}% {} of {}\n", m_label, percent, format_size(done), format_size(total))
                  << std::flush;
        }
    }
    /// Ends the bar's line.
    void end() {
        if (m_drew) m_out << '\n' << std::flush;
        m_drew = false;
    }

private:
    std::string m_label;
    ProgressStyle m_style;
    std::ostream& m_out;
    std::chrono::steady_clock::time_point m_last{};
    int m_last_tenth = -1;
    bool m_drew = false;
};

ApiError local_error(std::string message) { return ApiError{ApiErrorKind::Protocol, std::move(message), {}, 0, {}}; }

std::string content_path(const Transfer& transfer) {
    return api_path(fmt::format("/volumes/{}/{}/content", transfer.pool, transfer.volume));
}

ApiResult<json> answer_json(const HttpResponse& response) {
    if (response.status < 200 || response.status >= 300) return std::unexpected(error_from_response(response));
    json answer = json::parse(response.body.empty() ? "null" : response.body, nullptr, false);
    if (answer.is_discarded()) return std::unexpected(local_error("corrald's answer is not JSON"));
    return answer;
}

ApiResult<json> upload(const Transfer& transfer, ApiClient& api, ProgressDrawer& progress) {
    UniqueFd fd(::open(transfer.file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return std::unexpected(local_error(fmt::format("cannot read {}: {}", transfer.file, std::strerror(errno))));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return std::unexpected(local_error(fmt::format("{} is not a regular file", transfer.file)));
    auto source = [&](std::span<char> buffer) -> ApiResult<size_t> {
        for (;;) {
            ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
            if (n >= 0) return size_t(n);
            if (errno != EINTR)
                return std::unexpected(local_error(fmt::format("reading {}: {}", transfer.file, std::strerror(errno))));
        }
    };
    auto response = api.upload(content_path(transfer), uint64_t(st.st_size), source, std::ref(progress));
    progress.end();
    if (!response) return std::unexpected(response.error());
    return answer_json(*response);
}

/// Removes a partly written download unless it was committed.
struct PartialFile {
    std::string path;
    bool keep = false;
    ~PartialFile() {
        if (!keep && !path.empty()) ::unlink(path.c_str());
    }
};

ApiResult<json> download(const Transfer& transfer, ApiClient& api, ProgressDrawer& progress) {
    struct stat st {};
    if (::lstat(transfer.file.c_str(), &st) == 0)
        return std::unexpected(local_error(fmt::format("{} already exists; choose a new file", transfer.file)));
    fs::path target = fs::absolute(transfer.file);
    PartialFile partial{(target.parent_path() / fmt::format(".{}.corral-tmp-XXXXXX", target.filename().string())).string()};
    // A hidden, unpredictable, exclusively created name (mode 0600: it holds a guest's disk).
    UniqueFd fd(::mkostemp(partial.path.data(), O_CLOEXEC));
    if (!fd.valid()) {
        const std::string why = std::strerror(errno);
        partial.path.clear();
        return std::unexpected(local_error(fmt::format("cannot create a file next to {}: {}", transfer.file, why)));
    }
    auto sink = [&](std::string_view data) -> ApiResult<void> {
        while (!data.empty()) {
            ssize_t n = ::write(fd.get(), data.data(), data.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return std::unexpected(local_error(fmt::format("writing {}: {}", transfer.file, std::strerror(errno))));
            data.remove_prefix(size_t(n));
        }
        return {};
    };
    auto response = api.download(content_path(transfer) + "?format=" + transfer.format, sink, std::ref(progress));
    progress.end();
    if (!response) return std::unexpected(response.error());
    if (response->status < 200 || response->status >= 300) return std::unexpected(error_from_response(*response));
    if (::fsync(fd.get()) != 0)
        return std::unexpected(local_error(fmt::format("writing {}: {}", transfer.file, std::strerror(errno))));
    // Never replaces a file that appeared meanwhile.
    if (::renameat2(AT_FDCWD, partial.path.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0)
        return std::unexpected(local_error(fmt::format("cannot create {}: {}", transfer.file, std::strerror(errno))));
    partial.keep = true;
    return json{{"pool", transfer.pool}, {"volume", transfer.volume}, {"file", target.string()}, {"format", transfer.format}};
}

}  // namespace

int run_transfer(const Invocation& invocation, ApiClient& api, ProgressStyle style, std::ostream& out,
                 std::ostream& err) {
    const Transfer& transfer = *invocation.transfer;
    const bool up = transfer.direction == Transfer::Direction::Upload;
    ProgressDrawer progress(fmt::format("{} {}/{}", up ? "upload" : "download", transfer.pool, transfer.volume),
                            invocation.json ? ProgressStyle::Quiet : style, err);
    auto result = up ? upload(transfer, api, progress) : download(transfer, api, progress);
    if (!result) {
        err << format_error(result.error(), invocation.subject) << '\n';
        return exit_code_for(result.error());
    }
    if (invocation.json)
        out << result->dump(2) << '\n';
    else
        out << invocation.done_message << '\n';
    return 0;
}

}  // namespace corral::cli
