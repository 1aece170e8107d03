#pragma once

// Alarm webhooks: each event POSTed as JSON to the rule's URL, on a thread of its own so the
// metrics sampling thread never waits for a slow or dead receiver.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/result.h"

namespace corral::daemon {

/// One POST of `body` (application/json) to `url` (http:// or https://, the latter checked
/// against the system's CAs and the URL's host name), all of it within `timeout`. A non-2xx
/// answer is an error naming the status.
Result<void> post_webhook(const std::string& url, const std::string& body, std::chrono::milliseconds timeout);

/// Whether `url` is one post_webhook() can send to: "http://HOST[:PORT][/PATH]" or https://;
/// nullopt when it is, else what is wrong with it.
std::optional<std::string> webhook_url_problem(const std::string& url);

struct WebhookPolicy {
    std::chrono::milliseconds timeout{5000};  ///< per attempt
    unsigned attempts = 3;
    std::chrono::milliseconds first_backoff{1000};  ///< doubled after each failed attempt
    size_t max_queued = 1000;                       ///< beyond this the oldest delivery is dropped (and reported)
};

/// Delivers queued POSTs in order, each retried with backoff, on its own thread.
class WebhookSender {
public:
    /// Told how each delivery ended: `error` empty when it was delivered, else why the last
    /// attempt failed. Called on the sender's thread.
    using Outcome = std::function<void(const std::string& alarm, const std::string& url, const std::string& error)>;

    explicit WebhookSender(Outcome outcome, WebhookPolicy policy = {});
    /// Stops at once (a backoff in progress is cut short; queued deliveries are dropped) and joins.
    ~WebhookSender();
    WebhookSender(const WebhookSender&) = delete;
    WebhookSender& operator=(const WebhookSender&) = delete;

    /// Queues a POST of `body` to `url` on behalf of alarm `alarm`. Never blocks on the network.
    void post(std::string alarm, std::string url, std::string body);

private:
    struct Delivery {
        std::string alarm, url, body;
    };
    void run();

    Outcome m_outcome;
    WebhookPolicy m_policy;
    std::mutex m_mutex;  // guards m_queue, m_stopping
    std::condition_variable m_wake;
    std::deque<Delivery> m_queue;
    bool m_stopping = false;
    std::thread m_thread;
};

}  // namespace corral::daemon
