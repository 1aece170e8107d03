#include "net/firewall/nft.h"

#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "base/unique_fd.h"

extern char** environ;

namespace corral::net::firewall {
namespace {

// stdin, stdout and stderr are memfds, not pipes: nft's input and output never wait on each
// other, however large the ruleset (a pipe would need a poll loop to avoid a deadlock).
Result<UniqueFd> memfd(const char* name) {
    UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
    if (!fd.valid()) return fail_errno("memfd_create");
    return fd;
}

Result<std::string> read_all(int fd) {
    std::string text;
    if (::lseek(fd, 0, SEEK_SET) < 0) return fail_errno("lseek");
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("reading nft's output");
        }
        if (n == 0) return text;
        text.append(buffer, static_cast<size_t>(n));
    }
}

}  // namespace

Result<NftRun> run_nft(const std::vector<std::string>& args, const std::string& input) {
    UniqueFd in = TRY(memfd("nft-in"));
    UniqueFd out = TRY(memfd("nft-out"));
    UniqueFd err = TRY(memfd("nft-err"));
    for (size_t done = 0; done < input.size();) {
        ssize_t n = ::write(in.get(), input.data() + done, input.size() - done);
        if (n < 0) return fail_errno("writing nft's input");
        done += static_cast<size_t>(n);
    }
    if (::lseek(in.get(), 0, SEEK_SET) < 0) return fail_errno("lseek");

    const char* program = std::getenv("CORRAL_NFT");
    std::string nft = program && *program ? program : "nft";
    std::vector<std::string> argv_strings{nft};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err.get(), 2);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, nft.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return fail(Error(ErrorKind::Unavailable, "cannot run " + nft + " (install nftables)", rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return fail_errno("waitpid(nft)");
    NftRun run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = TRY(read_all(out.get()));
    run.err = TRY(read_all(err.get()));
    return run;
}

}  // namespace corral::net::firewall
