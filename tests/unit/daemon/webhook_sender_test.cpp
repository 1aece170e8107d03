#include "daemon/webhook_sender.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

/// A loopback HTTP receiver on a free port: answers every request with `status`, keeps the bodies.
class Receiver {
public:
    explicit Receiver(int status) : m_status(status) {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        socklen_t length = sizeof address;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length);
        m_port = ntohs(address.sin_port);
        EXPECT_EQ(::listen(m_fd, 8), 0);
        m_thread = std::thread([this] { serve(); });
    }
    ~Receiver() {
        ::shutdown(m_fd, SHUT_RDWR);
        m_thread.join();
        ::close(m_fd);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/hook"; }
    std::vector<std::string> requests() {
        std::lock_guard lock(m_mutex);
        return m_requests;
    }

private:
    void serve() {
        while (true) {
            int client = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0)
                return;
            std::string request;
            char buffer[4096];
            // Headers, then Content-Length bytes of body.
            while (true) {
                ssize_t n = ::read(client, buffer, sizeof buffer);
                if (n <= 0)
                    break;
                request.append(buffer, static_cast<size_t>(n));
                auto end = request.find("\r\n\r\n");
                auto length_at = request.find("Content-Length: ");
                if (end != std::string::npos && length_at != std::string::npos &&
                    request.size() >= end + 4 + std::stoul(request.substr(length_at + 16)))
                    break;
            }
            {
                // Kept before answering: the sender's outcome may come as soon as it reads the answer.
                std::lock_guard lock(m_mutex);
                m_requests.push_back(request);
            }
            const std::string answer = "HTTP/1.1 " + std::to_string(m_status) + " X\r\nContent-Length: 0\r\n\r\n";
            [[maybe_unused]] auto written = ::write(client, answer.data(), answer.size());
            ::close(client);
        }
    }
    int m_status;
    int m_fd = -1;
    uint16_t m_port = 0;
    std::mutex m_mutex;
    std::vector<std::string> m_requests;
    std::thread m_thread;
};

/// Each delivery's outcome, waited for.
struct Outcomes {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> errors;
    WebhookSender::Outcome callback() {
        return [this](const std::string&, const std::string&, const std::string& error) {
            std::lock_guard lock(mutex);
            errors.push_back(error);
            changed.notify_all();
        };
    }
    std::string wait_one() {
        std::unique_lock lock(mutex);
        changed.wait(lock, [this] { return !errors.empty(); });
        return errors.front();
    }
};

const WebhookPolicy k_quick{.timeout = std::chrono::milliseconds(5000),
                            .attempts = 3,
                            .first_backoff = std::chrono::milliseconds(10),
                            .max_queued = 10};

TEST(WebhookSender, PostsTheBodyAsJson) {
    Receiver receiver(204);
    Outcomes outcomes;
    WebhookSender sender(outcomes.callback(), k_quick);
    sender.post("busy", receiver.url(), R"({"kind":"alarm.firing"})");
    EXPECT_EQ(outcomes.wait_one(), "");
    auto requests = receiver.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_TRUE(requests[0].starts_with("POST /hook HTTP/1.1\r\n")) << requests[0];
    EXPECT_NE(requests[0].find("Content-Type: application/json"), std::string::npos) << requests[0];
    EXPECT_TRUE(requests[0].ends_with("\r\n\r\n{\"kind\":\"alarm.firing\"}")) << requests[0];
}

TEST(WebhookSender, RetriesThenReportsTheLastError) {
    Receiver receiver(500);
    Outcomes outcomes;
    WebhookSender sender(outcomes.callback(), k_quick);
    sender.post("busy", receiver.url(), "{}");
    EXPECT_EQ(outcomes.wait_one(), "POST " + receiver.url() + ": the receiver answered HTTP 500");
    EXPECT_EQ(receiver.requests().size(), 3u);  // every attempt
}

TEST(WebhookSender, NobodyListening) {
    std::string url;
    {
        Receiver gone(204);
        url = gone.url();
    }  // closed: connecting is refused
    Outcomes outcomes;
    WebhookSender sender(outcomes.callback(), k_quick);
    sender.post("busy", url, "{}");
    EXPECT_NE(outcomes.wait_one().find("Connection refused"), std::string::npos);
}

TEST(WebhookSender, UrlsItCannotCall) {
    EXPECT_FALSE(webhook_url_problem("http://127.0.0.1:8080/x?y=1"));
    EXPECT_FALSE(webhook_url_problem("https://[::1]/x"));
    EXPECT_EQ(webhook_url_problem("ftp://h/x"), "it must start with http:// or https://");
    EXPECT_EQ(webhook_url_problem("http://user:pw@h/x"), "it must not hold a user name or password (user@host)");
    EXPECT_EQ(webhook_url_problem("http://h:0/"), "its port must be a number from 1 to 65535");
    EXPECT_EQ(webhook_url_problem("http://h:99999/"), "its port must be a number from 1 to 65535");
    EXPECT_EQ(webhook_url_problem("http:///x"), "it names no host");
    EXPECT_EQ(webhook_url_problem("http://h/a b"), "it must not contain spaces or control characters");
}

}  // namespace
}  // namespace corral::daemon
