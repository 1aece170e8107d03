#pragma once

#include <termios.h>

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"

namespace corral::vmm {

/// The guest console on the monitor's stdin/stdout. On a terminal, stdin is put in raw mode
/// (restored on destruction) so keys reach the guest, and Ctrl-A x ends the monitor
/// (Ctrl-A Ctrl-A sends one Ctrl-A), like QEMU's -nographic console.
class StdioConsole {
public:
    static Result<StdioConsole> open();
    StdioConsole(StdioConsole&& other) noexcept;
    StdioConsole& operator=(StdioConsole&&) = delete;
    ~StdioConsole();

    /// The fd to poll for input; -1 once input reached end of file.
    int input_fd() const { return m_input_open ? 0 : -1; }

    enum class InputStatus { Data, EndOfFile, QuitRequested };
    /// Reads what stdin has (non-blocking) into `buffer`, minus escape sequences.
    InputStatus read_input(std::span<uint8_t> buffer, size_t& length);
    /// Writes guest output to stdout; retries partial writes, drops output if stdout is gone.
    static void write_output(std::span<const uint8_t> bytes);

private:
    StdioConsole() = default;

    bool m_input_open = true;
    bool m_escape_pending = false;
    std::optional<termios> m_saved_terminal;
};

}  // namespace corral::vmm
