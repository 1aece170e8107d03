#pragma once
// For the engine integration tests: a VM is never left behind by a test that ends early.

#include "engine/engine.h"

namespace corral::engine::testing {

/// Kills a VM still running when the test ends: a failed ASSERT returns early, and a guest left
/// behind (one that ignores shutdown requests, or an incoming migration that never got its
/// stream) would outlive the test run.
struct KillAtEnd {
    Instance& vm;
    ~KillAtEnd() {
        if (!vm.exited()) ignore_error(vm.kill(), "the test is over either way");
    }
};

}  // namespace corral::engine::testing
