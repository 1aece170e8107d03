#include "engine/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "base/unix_socket.h"

namespace corral::engine {

namespace {

int remaining_ms(QmpClient::Clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - QmpClient::Clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

/// Waits until `fd` is ready for `events` or the deadline passed (ETIMEDOUT).
Result<void> wait_fd(int fd, short events, QmpClient::Clock::time_point deadline,
                     const char* what) {
    for (;;) {
        pollfd pfd{fd, events, 0};
        int n = ::poll(&pfd, 1, remaining_ms(deadline));
        if (n > 0)
            return {};
        if (n == 0)
            return fail(fmt::format("QMP: timed out waiting for {}", what), ETIMEDOUT);
        if (errno != EINTR)
            return fail_errno("QMP: poll");
    }
}

}  // namespace

Result<QmpClient> QmpClient::connect(const std::filesystem::path& socket,
                                     std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    const std::string& path = socket.native();
    if (path.size() > k_unix_path_max)
        return fail(fmt::format("QMP socket path {} is too long for a unix socket", path), ENAMETOOLONG);
    auto connected = connect_unix_socket(socket, SocketMode::NonBlocking);
    // EAGAIN: QEMU's backlog is full (it is busy); a unix socket does not finish connecting in
    // the background, so ask again until the deadline.
    while (!connected && connected.error().errno_value() == EAGAIN) {
        if (Clock::now() >= deadline) return fail("QMP: timed out waiting for the connection", ETIMEDOUT);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        connected = connect_unix_socket(socket, SocketMode::NonBlocking);
    }
    if (!connected) {
        int original = connected.error().errno_value();
        // ECONNREFUSED: the socket file is there but nobody listens (QEMU has gone).
        int mapped = original == ECONNREFUSED ? ENOENT : original;
        return fail(fmt::format("QMP: cannot connect to {}: {}", path, std::strerror(original)), mapped);
    }
    UniqueFd fd = std::move(*connected);
    return handshake(std::move(fd), std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - Clock::now()));
}

Result<QmpClient> QmpClient::handshake(UniqueFd fd, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    QmpClient client(std::move(fd));
    auto greeting = TRY_CONTEXT(client.read_message(deadline), "QMP greeting");
    if (!greeting.is_object() || !greeting.contains("QMP"))
        return fail(fmt::format("QMP: expected a greeting, got {}", greeting.dump()), EPROTO);
    client.m_greeting = greeting["QMP"];
    TRY_VOID(client.execute(
        "qmp_capabilities", nullptr,
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())));
    return client;
}

Result<void> QmpClient::send(const nlohmann::json& message, Clock::time_point deadline, int fd) {
    std::string text = message.dump() + "\r\n";
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n;
        if (fd >= 0 && done == 0) {
            // The descriptor rides on the first byte; QEMU takes it with the command it reads.
            iovec data{text.data(), text.size()};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
            msghdr header{};
            header.msg_iov = &data;
            header.msg_iovlen = 1;
            header.msg_control = control;
            header.msg_controllen = sizeof(control);
            cmsghdr* rights = CMSG_FIRSTHDR(&header);
            rights->cmsg_level = SOL_SOCKET;
            rights->cmsg_type = SCM_RIGHTS;
            rights->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(rights), &fd, sizeof(int));
            n = ::sendmsg(m_fd.get(), &header, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            n = ::send(m_fd.get(), text.data() + done, text.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            TRY_VOID(wait_fd(m_fd.get(), POLLOUT, deadline, "QEMU to take a command"));
        } else {
            return fail(fmt::format("QMP: sending a command: {}", std::strerror(errno)),
                        ECONNRESET);
        }
    }
    return {};
}

Result<nlohmann::json> QmpClient::read_message(Clock::time_point deadline) {
    // QEMU ends every message with "\r\n" and never puts a raw newline inside one (JSON escapes
    // them), so a line is a message.
    constexpr size_t k_max_message = 16 * 1024 * 1024;
    for (;;) {
        size_t newline = m_buffer.find('\n');
        if (newline != std::string::npos) {
            std::string line = m_buffer.substr(0, newline);
            m_buffer.erase(0, newline + 1);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            if (line.find_first_not_of(" \t") == std::string::npos)
                continue;
            auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
            if (parsed.is_discarded())
                return fail(
                    fmt::format("QMP: malformed message from QEMU: {}", line.substr(0, 200)),
                    EPROTO);
            return parsed;
        }
        if (m_buffer.size() > k_max_message)
            return fail("QMP: message from QEMU is too large", EPROTO);
        TRY_VOID(wait_fd(m_fd.get(), POLLIN, deadline, "QEMU's answer"));
        char chunk[4096];
        ssize_t n = ::recv(m_fd.get(), chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n > 0) {
            m_buffer.append(chunk, static_cast<size_t>(n));
        } else if (n == 0) {
            return fail("QMP: QEMU closed the connection", ECONNRESET);
        } else if (errno != EAGAIN && errno != EINTR) {
            return fail(fmt::format("QMP: reading: {}", std::strerror(errno)), ECONNRESET);
        }
    }
}

Result<nlohmann::json> QmpClient::execute(std::string_view command, const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout) {
    return run(command, arguments, -1, timeout);
}

Result<nlohmann::json> QmpClient::execute_with_fd(std::string_view command, const nlohmann::json& arguments, int fd,
                                                  std::chrono::milliseconds timeout) {
    if (fd < 0) return fail(fmt::format("QMP {}: no descriptor to pass", command), EBADF);
    return run(command, arguments, fd, timeout);
}

Result<nlohmann::json> QmpClient::run(std::string_view command, const nlohmann::json& arguments, int fd,
                                      std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    uint64_t id = m_next_id++;
    nlohmann::json message = {{"execute", command}, {"id", id}};
    if (!arguments.is_null())
        message["arguments"] = arguments;
    TRY_VOID(send(message, deadline, fd));
    for (;;) {
        auto reply = TRY_CONTEXT(read_message(deadline), fmt::format("QMP {}", command));
        if (!reply.is_object())
            return fail(fmt::format("QMP: unexpected message {}", reply.dump()), EPROTO);
        if (reply.contains("event")) {
            ++m_skipped_events;
            continue;
        }
        // An answer to an earlier command that timed out on our side: not ours.
        if (reply.contains("id") && reply["id"] != id)
            continue;
        if (reply.contains("return"))
            return reply["return"];
        if (reply.contains("error")) {
            const auto& error = reply["error"];
            std::string cls = error.value("class", "GenericError");
            std::string desc = error.value("desc", "no description");
            return fail(fmt::format("QMP {} failed: {}: {}", command, cls, desc), EIO);
        }
        return fail(fmt::format("QMP: unexpected message {}", reply.dump().substr(0, 200)), EPROTO);
    }
}

}  // namespace corral::engine
