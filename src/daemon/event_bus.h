#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

namespace corral::daemon {

/// Fan-out of daemon events (VM state changes, tasks, objects created or deleted) to whoever
/// listens: /events WebSockets, the supervisor's log. Thread-safe; callbacks run on the
/// publisher's thread, so they must only queue (WebSocketConnection::send_text does).
class EventBus {
public:
    using Listener = std::function<void(const nlohmann::json& event)>;

    /// Sends `event` (an object; "time" is added) to every listener.
    void publish(nlohmann::json event);
    /// Returns an id for unsubscribe().
    uint64_t subscribe(Listener listener);
    void unsubscribe(uint64_t id);

private:
    std::mutex m_mutex;
    std::map<uint64_t, Listener> m_listeners;
    uint64_t m_next_id = 1;
};

/// Now as ISO-8601 UTC with seconds ("2026-11-26T23:00:00Z").
std::string utc_now();

}  // namespace corral::daemon
