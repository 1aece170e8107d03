#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

namespace corral {

/// What kind of failure an error is, apart from its errno: what a caller (the API's status
/// code, a retry) decides by. A system call that failed is `System` even when its errno is
/// ENOENT: a missing backing file is not a missing VM.
enum class ErrorKind {
    Failed,       ///< the operation failed for a reason not listed below
    NotFound,     ///< the thing named does not exist (no VM, no volume, no task)
    Conflict,     ///< it exists already, or something else depends on it
    Invalid,      ///< a value given is not acceptable
    Busy,         ///< not possible in the current state; may work later
    Unavailable,  ///< a needed facility is missing on this host (an engine, KVM)
    System,       ///< a system call failed (errno says which): the host's problem, not the request's
};

/// An error as a value: a human sentence, its kind, and, where the cause is a system call, its
/// errno.
class Error {
public:
    /// A domain error; its kind follows from the errno the code chose to describe it (ENOENT:
    /// NotFound, EEXIST: Conflict, EBUSY: Busy, EINVAL/ERANGE: Invalid, ENODEV: Unavailable).
    explicit Error(std::string message, int errno_value = 0)
        : m_message(std::move(message)), m_errno(errno_value), m_kind(kind_of_errno(errno_value)) {}
    Error(ErrorKind kind, std::string message, int errno_value = 0)
        : m_message(std::move(message)), m_errno(errno_value), m_kind(kind) {}

    /// An error from a failed system call (kind System); reads errno, so call it right after the
    /// failure.
    static Error from_errno(std::string what) { return Error(ErrorKind::System, std::move(what), errno); }

    const std::string& message() const { return m_message; }
    int errno_value() const { return m_errno; }
    ErrorKind kind() const { return m_kind; }

    /// The message, followed by strerror(errno) when there is one.
    std::string describe() const;

    /// Prefixes the message with context, keeping the errno and kind ("loading kernel: ...").
    Error with_context(const std::string& context) const {
        return Error(m_kind, context + ": " + m_message, m_errno);
    }

    static ErrorKind kind_of_errno(int errno_value);

private:
    std::string m_message;
    int m_errno;
    ErrorKind m_kind;
};

/// std::expected that the compiler will not let a caller drop: a failure left unread is a
/// bug more often than not. Everything std::expected does (constructors from a value, from
/// std::unexpected, from another expected; assignment; `*`, `->`, error()) works unchanged.
/// Where ignoring a failure is right, say so with ignore_error(). E is the error type, so the
/// daemon's and the CLI's ApiResult share it.
template <typename T, typename E>
class [[nodiscard]] BasicResult : public std::expected<T, E> {
    using Base = std::expected<T, E>;

public:
    using Base::Base;
    using Base::operator=;
    BasicResult() = default;
    // From a plain std::expected of the same types (a value a library returned as such).
    BasicResult(const Base& other) : Base(other) {}
    BasicResult(Base&& other) : Base(std::move(other)) {}
};

template <typename T>
using Result = BasicResult<T, Error>;

/// Drops a result on purpose. `why` documents at the call site why a failure needs no action
/// (best effort clean-up, a second error on an error path); it is not logged.
template <typename T, typename E>
inline void ignore_error(const BasicResult<T, E>& /*result*/, const char* /*why*/) {}

/// Shorthand for returning an error from a function that returns Result<T>.
inline std::unexpected<Error> fail(std::string message, int errno_value = 0) {
    return std::unexpected(Error(std::move(message), errno_value));
}
inline std::unexpected<Error> fail_errno(std::string what) {
    return std::unexpected(Error::from_errno(std::move(what)));
}
inline std::unexpected<Error> fail(Error error) { return std::unexpected(std::move(error)); }
inline std::unexpected<Error> fail(ErrorKind kind, std::string message) {
    return std::unexpected(Error(kind, std::move(message)));
}

namespace detail {
/// The value of a successful Result, or nothing for Result<void> (used by TRY).
/// Any error type, so TRY also serves results with richer errors (the daemon's ApiResult).
template <typename T, typename E>
T take_value(std::expected<T, E>& result) {
    return std::move(*result);
}
template <typename E>
void take_value(std::expected<void, E>&) {}
}  // namespace detail

}  // namespace corral

/// Evaluates a Result; on error returns it from the enclosing function, else yields the value.
#define TRY(expr)                                                       \
    ({                                                                  \
        auto _corral_try_result = (expr);                               \
        if (!_corral_try_result) [[unlikely]]                           \
            return std::unexpected(std::move(_corral_try_result.error())); \
        corral::detail::take_value(_corral_try_result);                 \
    })

/// Like TRY for Result<void>.
#define TRY_VOID(expr)                                                  \
    do {                                                                \
        auto _corral_try_result = (expr);                               \
        if (!_corral_try_result) [[unlikely]]                           \
            return std::unexpected(std::move(_corral_try_result.error())); \
    } while (0)

/// Like TRY, but prefixes an error's message with `context` (a string) on the way out.
#define TRY_CONTEXT(expr, context)                                      \
    ({                                                                  \
        auto _corral_try_result = (expr);                               \
        if (!_corral_try_result) [[unlikely]]                           \
            return std::unexpected(_corral_try_result.error().with_context(context)); \
        corral::detail::take_value(_corral_try_result);                 \
    })
