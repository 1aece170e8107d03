#include "daemon/event_bus.h"

#include <ctime>
#include <vector>

#include "base/log.h"

namespace corral::daemon {

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

void EventBus::publish(nlohmann::json event) {
    if (!event.contains("time")) event["time"] = utc_now();
    std::vector<Listener> listeners;
    {
        std::lock_guard lock(m_mutex);
        for (const auto& [id, listener] : m_listeners) listeners.push_back(listener);
    }
    // Called outside the lock: a listener may subscribe or unsubscribe. A listener that throws
    // must not take the publisher (a task, the VM supervisor) down with it, nor the others.
    for (const auto& listener : listeners) {
        try {
            listener(event);
        } catch (const std::exception& error) {
            log_error("an event listener failed: {}", error.what());
        }
    }
}

uint64_t EventBus::subscribe(Listener listener) {
    std::lock_guard lock(m_mutex);
    uint64_t id = m_next_id++;
    m_listeners.emplace(id, std::move(listener));
    return id;
}

void EventBus::unsubscribe(uint64_t id) {
    std::lock_guard lock(m_mutex);
    m_listeners.erase(id);
}

}  // namespace corral::daemon
