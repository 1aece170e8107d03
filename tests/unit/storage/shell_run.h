#pragma once

// Shell commands for the storage tests, whose oracle is QEMU's own tools (qemu-img, qemu-io): what
// they make, change and check is what Corral's storage code must agree with.

#include <stdio.h>
#include <sys/wait.h>

#include <string>

#include <gtest/gtest.h>

namespace corral::storage::testing {

/// What a shell command did: its exit status (-1 when it could not start or was killed by a
/// signal) and what it wrote (see run()).
struct Command {
    int status = -1;
    std::string output;
};

/// Runs `command` with /bin/sh and waits for it to end; the output is its stdout with ` 2>&1`
/// appended to it: a simple command's stderr too, of a list or a pipeline the last command's.
inline Command run(const std::string& command) {
    Command c;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p)
        return c;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        c.output.append(buf, n);
    int status = ::pclose(p);
    c.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return c;
}

/// Whether `command` runs and exits 0 (a tool is installed, or takes a subcommand).
inline bool succeeds(const std::string& command) {
    return run(command).status == 0;
}

/// qemu-img is there (qemu-utils).
inline bool have_qemu_img() {
    return succeeds("qemu-img --version");
}

/// qemu-img edits bitmaps (`qemu-img bitmap`, QEMU 5.0 and later) and qemu-io is there: what the
/// bitmap tests make and change their images with.
inline bool have_qemu_bitmap_tools() {
    return succeeds("qemu-img bitmap --help") && succeeds("qemu-io --version");
}

}  // namespace corral::storage::testing

/// Runs a shell command that must succeed: a fatal failure naming the command, with its output.
#define SHELL(command)                                             \
    do {                                                           \
        const auto c_ = ::corral::storage::testing::run(command);  \
        ASSERT_EQ(c_.status, 0) << (command) << "\n" << c_.output; \
    } while (0)
