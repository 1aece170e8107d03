// A deterministic stand-in for libFuzzer (clang 14 on Debian 12 cannot build GCC 12's <expected>):
// runs the target's seeds (make_seeds(), plus files named on the command line), then mutations
// of them made with a fixed random seed, through LLVMFuzzerTestOneInput. Same binary, same
// inputs, every run: a failure in CI reproduces locally.
//
// Usage: DRIVER [ITERATIONS [EXTRA_SEED_FILES...]]
// When the target crashes (a sanitizer report or an abort) the input is saved to
// ./fuzz-crash-input; `DRIVER 0 fuzz-crash-input` replays it alone.
#include "smoke_driver.h"

#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using corral::fuzz::Input;

const Input* g_current = nullptr;  // the input being run, for the crash handlers

void save_current_input() {
    if (!g_current) return;
    // Async-signal-safe: open/write/close only.
    int fd = ::open("fuzz-crash-input", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    const uint8_t* data = g_current->data();
    size_t left = g_current->size();
    while (left > 0) {
        ssize_t n = ::write(fd, data, left);
        if (n <= 0) break;
        data += n;
        left -= static_cast<size_t>(n);
    }
    ::close(fd);
    static const char message[] = "fuzz smoke: the crashing input is in ./fuzz-crash-input\n";
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, message, sizeof message - 1);
}

void on_fatal_signal(int signal) {
    save_current_input();
    ::signal(signal, SIG_DFL);
    ::raise(signal);
}

Input read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz smoke: cannot read %s\n", path.c_str());
        std::exit(2);
    }
    return Input(std::istreambuf_iterator<char>(in), {});
}

/// Byte-level mutations in the spirit of libFuzzer's, with a bias towards where the seed has
/// data (headers, descriptors, tables) and towards values that sit on boundaries.
class Mutator {
public:
    explicit Mutator(uint64_t seed) : m_rng(seed) {}

    Input mutate(const std::vector<Input>& seeds) {
        Input input = seeds[below(seeds.size())];
        if (below(16) == 0) splice(input, seeds[below(seeds.size())]);
        int count = 1 + static_cast<int>(below(8));
        for (int i = 0; i < count && !input.empty(); ++i) mutate_once(input);
        return input;
    }

private:
    uint64_t below(uint64_t n) { return n ? m_rng() % n : 0; }

    /// Anywhere, in the first 16 KiB (formats put their metadata first), or on a non-zero byte
    /// (rings, descriptors and headers in an otherwise zero memory image).
    size_t position(const Input& input) {
        size_t at = below(input.size());
        switch (below(3)) {
            case 0: return at;
            case 1: return below(std::min<size_t>(input.size(), 16 * 1024));
            default:
                for (size_t i = 0; i < input.size(); ++i) {
                    size_t probe = (at + i) % input.size();
                    if (input[probe] != 0) return probe;
                }
                return at;
        }
    }

    void store(Input& input, size_t at, uint64_t value, size_t width, bool big_endian) {
        at &= ~(width - 1);  // fields are aligned to their width
        if (at + width > input.size()) return;
        for (size_t i = 0; i < width; ++i) {
            size_t shift = 8 * (big_endian ? width - 1 - i : i);
            input[at + i] = static_cast<uint8_t>(value >> shift);
        }
    }

    void mutate_once(Input& input) {
        static constexpr uint64_t k_interesting[] = {0,      1,      2,          3,          7,          8,
                                                     15,     16,     0x7f,       0x80,       0xff,       0x100,
                                                     0x1ff,  0x200,  0xfff,      0x1000,     0x7fff,     0x8000,
                                                     0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 1ull << 40,
                                                     ~0ull,  0x8000000000000000ull};
        size_t at = position(input);
        size_t width = size_t{1} << below(4);
        switch (below(7)) {
            case 0: input[at] ^= static_cast<uint8_t>(1u << below(8)); break;
            case 1: input[at] = static_cast<uint8_t>(m_rng()); break;
            case 2: store(input, at, k_interesting[below(std::size(k_interesting))], width, below(2) == 0); break;
            case 3: store(input, at, below(300), width, false); break;  // indices, counts, small lengths
            case 4: {  // nudge a little-endian field up or down
                size_t field = at & ~(width - 1);
                if (field + width > input.size()) break;
                uint64_t value = 0;
                for (size_t i = 0; i < width; ++i) value |= uint64_t{input[field + i]} << (8 * i);
                store(input, field, value + below(33) - 16, width, false);
                break;
            }
            case 5: {  // copy a few bytes from elsewhere in the input
                size_t from = below(input.size());
                size_t length = std::min({size_t{1} + below(16), input.size() - from, input.size() - at});
                std::copy_n(input.begin() + static_cast<long>(from), length, input.begin() + static_cast<long>(at));
                break;
            }
            default: input.resize(at + 1); break;  // truncation
        }
    }

    void splice(Input& input, const Input& other) {
        if (input.empty() || other.empty()) return;
        size_t cut = below(std::min(input.size(), other.size()));
        std::copy(other.begin() + static_cast<long>(cut), other.begin() + static_cast<long>(std::min(other.size(), input.size())),
                  input.begin() + static_cast<long>(cut));
    }

    std::mt19937_64 m_rng;
};

void run(const Input& input) {
    g_current = &input;
    // An allocation of exactly the input's size (as libFuzzer does): a read one byte past the
    // end hits AddressSanitizer's redzone, not a vector's spare capacity.
    auto exact = std::make_unique<uint8_t[]>(input.size());
    std::copy(input.begin(), input.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), input.size());
    g_current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = argc > 1 ? std::atol(argv[1]) : 2000;
    __sanitizer_set_death_callback(save_current_input);
    for (int signal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(signal, on_fatal_signal);

    auto started = std::chrono::steady_clock::now();
    std::vector<Input> seeds = corral::fuzz::make_seeds();
    for (int i = 2; i < argc; ++i) seeds.push_back(read_file(argv[i]));
    std::erase_if(seeds, [](const Input& seed) { return seed.empty(); });
    if (seeds.empty()) {
        std::fprintf(stderr, "fuzz smoke: no seeds\n");
        return 1;
    }
    for (const Input& seed : seeds) run(seed);
    Mutator mutator(12345);
    for (long i = 0; i < iterations; ++i) run(mutator.mutate(seeds));
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("fuzz smoke: %zu seeds and %ld mutated inputs in %.1f s, no crash\n", seeds.size(), iterations,
                seconds);
    return 0;
}
