#include "daemon/vm_lifecycle.h"

#include <array>
#include <map>
#include <utility>

namespace corral::daemon {
namespace {

constexpr std::array<std::pair<VmState, const char*>, 8> k_state_words = {{
    {VmState::Stopped, "stopped"},
    {VmState::Starting, "starting"},
    {VmState::Running, "running"},
    {VmState::Paused, "paused"},
    {VmState::Stopping, "stopping"},
    {VmState::Crashed, "crashed"},
    {VmState::Failed, "failed"},
    {VmState::MigratingIn, "migrating-in"},
}};

}  // namespace

const char* to_string(VmState state) {
    for (const auto& [value, word] : k_state_words)
        if (value == state) return word;
    return "?";
}

std::optional<VmState> parse_vm_state(std::string_view word) {
    for (const auto& [value, text] : k_state_words)
        if (word == text) return value;
    return std::nullopt;
}

std::optional<VmAction> parse_vm_action(const std::string& word) {
    static const std::map<std::string, VmAction> actions = {
        {"start", VmAction::Start}, {"stop", VmAction::Stop},     {"kill", VmAction::Kill},
        {"pause", VmAction::Pause}, {"resume", VmAction::Resume}, {"reboot", VmAction::Reboot},
        {"reset", VmAction::Reset}};
    auto it = actions.find(word);
    if (it == actions.end()) return std::nullopt;
    return it->second;
}

const char* to_string(VmAction action) {
    switch (action) {
        case VmAction::Start: return "start";
        case VmAction::Stop: return "stop";
        case VmAction::Kill: return "kill";
        case VmAction::Pause: return "pause";
        case VmAction::Resume: return "resume";
        case VmAction::Reboot: return "reboot";
        case VmAction::Reset: return "reset";
    }
    return "?";
}

bool is_down(VmState state) {
    return state == VmState::Stopped || state == VmState::Crashed || state == VmState::Failed;
}

bool is_down(std::string_view state) {
    auto parsed = parse_vm_state(state);
    return parsed && is_down(*parsed);
}

bool transition_allowed(VmState from, VmState to) {
    using enum VmState;
    switch (from) {
        // A VM without a process only starts (a crashed one also records that it gives up restarting).
        case Stopped:
        case Failed: return to == Starting;
        case Crashed: return to == Starting || to == Crashed;
        // Launched, or not; a corrald that restarted meanwhile adopts the process (running or
        // paused) or finds it ended (stopped, crashed).
        case Starting: return to == Running || to == Paused || to == Failed || to == Stopped || to == Crashed;
        // A process runs: it pauses and resumes, is asked to stop, or ends. Adoption after a
        // corrald restart records running or paused again, also for a VM that was stopping.
        case Running:
        case Paused:
            return to == Running || to == Paused || to == Stopping || to == Stopped || to == Crashed;
        // ... and a reboot's guest that shut down starts again at once (no "stopped" between, so
        // nothing can start, edit or delete the VM in the meantime).
        case Stopping:
            return to == Running || to == Paused || to == Stopping || to == Stopped || to == Crashed ||
                   to == Starting;
        // The switch of an incoming migration; a failed one removes the record instead.
        case MigratingIn: return to == Running;
    }
    return false;
}

std::optional<std::string_view> action_needs(VmState state, VmAction action) {
    using enum VmState;
    switch (action) {
        case VmAction::Start:
            if (!is_down(state)) return "stopped, crashed or failed";
            break;
        // A stop while stopping is allowed: it answers with the stop in flight, or kills.
        case VmAction::Stop:
        case VmAction::Kill:
            if (state != Running && state != Paused && state != Stopping) return "running or paused";
            break;
        case VmAction::Pause:
        case VmAction::Reboot:
        case VmAction::Reset:
            if (state != Running) return "running";
            break;
        case VmAction::Resume:
            if (state != Paused) return "paused";
            break;
    }
    return std::nullopt;
}

}  // namespace corral::daemon
