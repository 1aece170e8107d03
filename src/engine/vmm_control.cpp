#include "engine/vmm_control.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "base/unix_socket.h"

namespace corral::engine {

namespace {

/// Largest answer accepted: a screenshot's answer carries a PNG of up to 3840x2160 in base64
/// (an uncompressed one would be 33 MB); counters of many devices stay far below.
constexpr size_t k_max_answer_bytes = 64u << 20;

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

}  // namespace

Result<nlohmann::json> vmm_control_request(const std::filesystem::path& socket, const std::string& action,
                                           std::chrono::milliseconds timeout) {
    return vmm_control_send(socket, nlohmann::json{{"action", action}}, timeout);
}

Result<nlohmann::json> vmm_control_send(const std::filesystem::path& socket, const nlohmann::json& message,
                                           std::chrono::milliseconds timeout) {
    const std::string action = message.is_object() ? message.value("action", std::string()) : std::string();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string path = socket.string();
    auto connected = connect_unix_socket(socket, SocketMode::NonBlocking);
    if (!connected) {
        if (connected.error().errno_value() == ENAMETOOLONG)
            return fail(fmt::format("control socket path {} is too long", path), ENAMETOOLONG);
        // A unix socket connects at once or fails (EAGAIN: the backlog is full; say so as a timeout).
        int error = connected.error().errno_value() == EAGAIN ? ETIMEDOUT : connected.error().errno_value();
        return fail(fmt::format("corral-vmm's control socket {} does not answer: {}", path, std::strerror(error)),
                    error);
    }
    UniqueFd fd = std::move(*connected);
    std::string request = message.dump() + "\n";
    std::string_view pending = request;
    std::string answer;
    // Answers run to megabytes (a disk's bitmap, a screenshot): read in large pieces, and look
    // for the end of the line only in what is new (a rescan from the start on every piece
    // would be quadratic in the answer's size).
    std::vector<char> buffer(64 * 1024);
    size_t scanned = 0;
    while (answer.find('\n', scanned) == std::string::npos) {
        scanned = answer.size();
        pollfd entry{fd.get(), static_cast<short>(pending.empty() ? POLLIN : POLLOUT), 0};
        int ready = ::poll(&entry, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return fail_errno("poll on the control socket");
        if (ready == 0)
            return fail(fmt::format("corral-vmm did not answer '{}' within {} ms", action, timeout.count()),
                        ETIMEDOUT);
        if (!pending.empty()) {
            ssize_t n = ::send(fd.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return fail(Error::from_errno(fmt::format("sending '{}' to corral-vmm", action)));
            if (n > 0) pending.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return fail(Error::from_errno(fmt::format("reading corral-vmm's answer to '{}'", action)));
        if (n == 0)
            return fail(fmt::format("corral-vmm closed the control connection without answering '{}'", action),
                        EPROTO);
        answer.append(buffer.data(), static_cast<size_t>(n));
        if (answer.size() > k_max_answer_bytes)
            return fail(fmt::format("corral-vmm's answer to '{}' is too long", action), EPROTO);
    }
    answer.resize(answer.find('\n'));
    nlohmann::json document = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded() || !document.is_object())
        return fail(fmt::format("corral-vmm's answer to '{}' is not a JSON object: {}", action, answer), EPROTO);
    auto ok = document.find("ok");
    if (ok == document.end() || !ok->is_boolean() || !ok->get<bool>()) {
        auto reason = document.find("error");
        std::string error = reason != document.end() && reason->is_string() ? reason->get<std::string>()
                                                                            : "no reason given";
        int code = error.find("not supported") != std::string::npos ? ENOTSUP : EBUSY;
        return fail(fmt::format("corral-vmm refused '{}': {}", action, error), code);
    }
    return document;
}

Result<std::string> decode_base64(const std::string& text, std::string_view what) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t bits = 0;
    int count = 0;
    size_t end = text.size();
    while (end > 0 && text[end - 1] == '=')
        --end;
    for (size_t i = 0; i < end; ++i) {
        const int v = value(text[i]);
        if (v < 0)
            return fail(fmt::format("{} is not base64 (byte {})", what, i), EPROTO);
        bits = (bits << 6) | static_cast<uint32_t>(v);
        if (++count == 4) {
            out.push_back(static_cast<char>((bits >> 16) & 0xff));
            out.push_back(static_cast<char>((bits >> 8) & 0xff));
            out.push_back(static_cast<char>(bits & 0xff));
            bits = 0;
            count = 0;
        }
    }
    if (count == 1)
        return fail(fmt::format("{} is truncated base64", what), EPROTO);
    if (count == 2)
        out.push_back(static_cast<char>((bits >> 4) & 0xff));
    if (count == 3) {
        out.push_back(static_cast<char>((bits >> 10) & 0xff));
        out.push_back(static_cast<char>((bits >> 2) & 0xff));
    }
    return out;
}

}  // namespace corral::engine
