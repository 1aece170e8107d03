#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace corral::daemon {

/// Where a VM is in its life. The inventory stores it as text (to_string); the allowed moves
/// between states, and what each action needs, are in vm_lifecycle.cpp and nowhere else.
/// MigratingIn: a live migration from another corrald is arriving (its instance waits for the
/// stream); it becomes running at the switch, or its record goes when the migration fails.
enum class VmState { Stopped, Starting, Running, Paused, Stopping, Crashed, Failed, MigratingIn };

/// "stopped", "starting", ... (the API's and the inventory's words).
const char* to_string(VmState state);
/// The inverse of to_string; nullopt for another word.
std::optional<VmState> parse_vm_state(std::string_view word);

/// What a VM action asks for (PUT /vms/{name}/state).
/// Reboot asks the guest to shut down and starts the VM again (a reset when the guest does not
/// shut down in time); Reset resets it at once.
enum class VmAction { Start, Stop, Kill, Pause, Resume, Reboot, Reset };
/// "start" -> Start, ...; nullopt for an unknown word.
std::optional<VmAction> parse_vm_action(const std::string& word);
const char* to_string(VmAction action);

/// True when the VM has no process: stopped, crashed or failed (it may be edited, deleted, started).
bool is_down(VmState state);
/// is_down() of a stored state word; false for a word that is not a state.
bool is_down(std::string_view state);

/// Whether a VM in state `from` may move to `to`. Staying in a state (with a new reason) is
/// allowed where that happens: a crashed VM that gives up restarting, an adopted running VM.
bool transition_allowed(VmState from, VmState to);

/// Whether `action` may be asked of a VM in `state`: nullopt when it may, otherwise the states
/// it needs, as words for the error ("running or paused").
std::optional<std::string_view> action_needs(VmState state, VmAction action);

}  // namespace corral::daemon
