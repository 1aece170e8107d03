// The VM state machine's table (daemon/vm_lifecycle.h): the words, the allowed moves, and what
// each action needs. VmManager's behaviour on top of it is in vm_manager_test.cpp.
#include "daemon/vm_lifecycle.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using enum VmState;
constexpr VmState k_states[] = {Stopped, Starting, Running, Paused, Stopping, Crashed, Failed, MigratingIn};
constexpr VmAction k_actions[] = {VmAction::Start,  VmAction::Stop,   VmAction::Kill,
                                  VmAction::Pause, VmAction::Resume, VmAction::Reboot, VmAction::Reset};

TEST(VmLifecycleTest, StateWordsRoundTripAndUnknownWordsAreNoState) {
    for (auto state : k_states) EXPECT_EQ(parse_vm_state(to_string(state)), state) << to_string(state);
    EXPECT_EQ(parse_vm_state("Running"), std::nullopt);
    EXPECT_EQ(parse_vm_state(""), std::nullopt);
    EXPECT_FALSE(is_down("Stopped"));
    EXPECT_TRUE(is_down("crashed"));
}

TEST(VmLifecycleTest, ActionWordsRoundTrip) {
    for (auto action : k_actions) EXPECT_EQ(parse_vm_action(to_string(action)), action);
    EXPECT_EQ(parse_vm_action("restart"), std::nullopt);
}

TEST(VmLifecycleTest, OnlyAVmWithoutProcessStartsAndOnlyByStarting) {
    for (auto from : k_states) {
        // ... or, for a reboot, a VM whose guest shut down (stopping) starts again at once.
        EXPECT_EQ(transition_allowed(from, Starting), is_down(from) || from == Stopping) << to_string(from);
        if (!is_down(from)) continue;
        for (auto to : k_states) {
            bool expected = to == Starting || (from == Crashed && to == Crashed);  // giving up restarts
            EXPECT_EQ(transition_allowed(from, to), expected) << to_string(from) << " -> " << to_string(to);
        }
    }
}

TEST(VmLifecycleTest, OnlyAStartFails) {
    for (auto from : k_states) EXPECT_EQ(transition_allowed(from, Failed), from == Starting) << to_string(from);
}

TEST(VmLifecycleTest, ALiveVmPausesResumesStopsAndEndsButNeverStartsAgainWithoutEnding) {
    for (auto from : {Running, Paused, Stopping}) {
        for (auto to : {Running, Paused, Stopping, Stopped, Crashed})
            EXPECT_TRUE(transition_allowed(from, to)) << to_string(from) << " -> " << to_string(to);
        EXPECT_EQ(transition_allowed(from, Starting), from == Stopping);  // a reboot's second half
        EXPECT_FALSE(transition_allowed(from, Failed));
    }
}

TEST(VmLifecycleTest, ALateActionCannotResurrectAnEndedVm) {
    // A pause or stop task that raced with the VM's end must not overwrite "stopped".
    for (auto from : {Stopped, Crashed, Failed})
        for (auto to : {Running, Paused, Stopping})
            EXPECT_FALSE(transition_allowed(from, to)) << to_string(from) << " -> " << to_string(to);
}

TEST(VmLifecycleTest, AnIncomingMigrationOnlyBecomesRunningAndTakesNoAction) {
    // A failed one removes the record instead: no state of its own follows migrating-in.
    EXPECT_EQ(to_string(MigratingIn), std::string("migrating-in"));
    for (auto to : k_states)
        EXPECT_EQ(transition_allowed(MigratingIn, to), to == Running) << "migrating-in -> " << to_string(to);
    for (auto from : k_states)
        EXPECT_FALSE(transition_allowed(from, MigratingIn)) << to_string(from);
    EXPECT_FALSE(is_down(MigratingIn));  // not deletable, editable or startable meanwhile
    for (auto action : k_actions)
        EXPECT_TRUE(action_needs(MigratingIn, action).has_value()) << to_string(action);
}

TEST(VmLifecycleTest, WhatEachActionNeeds) {
    for (auto state : k_states) {
        bool live = state == Running || state == Paused || state == Stopping;
        EXPECT_EQ(action_needs(state, VmAction::Start).has_value(), !is_down(state)) << to_string(state);
        EXPECT_EQ(action_needs(state, VmAction::Stop).has_value(), !live) << to_string(state);
        EXPECT_EQ(action_needs(state, VmAction::Kill).has_value(), !live) << to_string(state);
        EXPECT_EQ(action_needs(state, VmAction::Pause).has_value(), state != Running) << to_string(state);
        EXPECT_EQ(action_needs(state, VmAction::Reboot).has_value(), state != Running) << to_string(state);
        EXPECT_EQ(action_needs(state, VmAction::Reset).has_value(), state != Running) << to_string(state);
        EXPECT_EQ(action_needs(state, VmAction::Resume).has_value(), state != Paused) << to_string(state);
    }
    EXPECT_EQ(action_needs(Running, VmAction::Start), "stopped, crashed or failed");
    EXPECT_EQ(action_needs(Stopped, VmAction::Stop), "running or paused");
    EXPECT_EQ(action_needs(Running, VmAction::Resume), "paused");
    // Every action a state allows leads somewhere the table allows.
    EXPECT_TRUE(transition_allowed(Crashed, Starting));
    EXPECT_TRUE(transition_allowed(Running, Stopping));
    EXPECT_TRUE(transition_allowed(Stopping, Stopping));  // a stop while stopping asks again
    EXPECT_TRUE(transition_allowed(Stopping, Starting));  // a reboot whose guest shut down
    EXPECT_TRUE(transition_allowed(Stopping, Running));   // a reboot that reset the guest
}

}  // namespace
}  // namespace corral::daemon
