#pragma once

// The deterministic fuzz driver's hook into a target: each smoke binary links smoke_driver.cpp,
// one libFuzzer entry point (LLVMFuzzerTestOneInput) and one seeds file defining make_seeds().

#include <cstdint>
#include <vector>

namespace corral::fuzz {

using Input = std::vector<uint8_t>;

/// Well-formed inputs for the target (real images, valid rings, ...) for the driver to mutate:
/// random bytes almost never get past a parser's first check, mutated valid inputs do.
std::vector<Input> make_seeds();

}  // namespace corral::fuzz
