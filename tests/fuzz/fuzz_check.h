#pragma once

// FUZZ_CHECK(condition): a target's invariant. When it fails, the condition and its line are
// printed before the abort, so a smoke-run failure says which rule the code under test broke.

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)
