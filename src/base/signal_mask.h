#pragma once

#include <signal.h>

#include <initializer_list>

namespace corral {

/// A sigset_t holding exactly `signals`.
sigset_t signal_set(std::initializer_list<int> signals);

/// The signals that ask a corral process to stop in order: SIGTERM, SIGINT, SIGHUP.
sigset_t stop_signals();

/// Blocks `signals` on the calling thread; threads it starts afterwards inherit the mask (so a
/// signal meant for sigwait/signalfd on one thread never takes its default action on another).
void block_signals(const sigset_t& signals);
/// Unblocks `signals` on the calling thread.
void unblock_signals(const sigset_t& signals);
/// Unblocks every signal: a process about to exec starts without the mask its parent had.
/// Async-signal-safe (sigemptyset and sigprocmask only): callable between fork and exec.
void clear_signal_mask();

}  // namespace corral
