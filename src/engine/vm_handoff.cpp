#include "engine/vm_handoff.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/unix_socket.h"
#include "storage/qcow2/format.h"

namespace corral::engine {

namespace fs = std::filesystem;

namespace {

constexpr size_t k_max_chain = 16;
/// parse_header needs at most one cluster; qcow2 clusters are at most 2 MiB.
constexpr size_t k_max_header = 2u << 20;

Result<std::vector<uint8_t>> read_head(int fd, size_t max, uint64_t& file_size) {
    struct stat info {};
    if (::fstat(fd, &info) != 0)
        return fail_errno("fstat");
    file_size = static_cast<uint64_t>(info.st_size);
    std::vector<uint8_t> data(std::min<uint64_t>(file_size, max));
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pread(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("read");
        if (n == 0)
            break;
        done += static_cast<size_t>(n);
    }
    data.resize(done);
    return data;
}

bool has_qcow2_magic(const std::vector<uint8_t>& head) {
    return head.size() >= 4 && head[0] == 'Q' && head[1] == 'F' && head[2] == 'I' &&
           head[3] == 0xfb;
}

}  // namespace

int HandedFds::add(UniqueFd fd) {
    m_fds.push_back(std::move(fd));
    return static_cast<int>(3 + m_fds.size() - 1);
}

std::vector<int> HandedFds::raw() const {
    std::vector<int> fds;
    for (const auto& fd : m_fds)
        fds.push_back(fd.get());
    return fds;
}

Result<UniqueFd> open_for_vm(const fs::path& path, int flags) {
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600));
    if (!fd.valid())
        return fail_errno(fmt::format("cannot open {} for the VM", path.string()));
    return fd;
}

Result<std::vector<ImageLayer>> image_chain(const fs::path& path, const std::string& format) {
    std::vector<ImageLayer> chain{{path, format}};
    while (chain.back().format == "qcow2") {
        ImageLayer& layer = chain.back();
        auto fd = TRY(open_for_vm(layer.path, O_RDONLY));
        uint64_t size = 0;
        auto head = TRY_CONTEXT(read_head(fd.get(), k_max_header, size),
                                fmt::format("reading {}", layer.path.string()));
        auto header = TRY_CONTEXT(storage::qcow2::parse_header(head, size),
                                  fmt::format("disk {}", layer.path.string()));
        layer.qcow2_version = header.version;
        if (header.backing_file.empty())
            break;
        if (chain.size() >= k_max_chain)
            return fail(
                fmt::format("disk {}: more than {} backing files", path.string(), k_max_chain),
                EINVAL);
        fs::path backing = header.backing_file;
        if (backing.is_relative())
            backing = layer.path.parent_path() / backing;
        std::string backing_format;
        if (header.backing_format) {
            backing_format = *header.backing_format;
        } else {
            auto backing_fd = TRY(open_for_vm(backing, O_RDONLY));
            uint64_t backing_size = 0;
            auto backing_head = TRY(read_head(backing_fd.get(), 4, backing_size));
            backing_format = has_qcow2_magic(backing_head) ? "qcow2" : "raw";
        }
        if (backing_format != "qcow2" && backing_format != "raw")
            return fail(fmt::format("disk {}: backing file {} has format '{}' (raw or qcow2 only)",
                                    path.string(), backing.string(), backing_format),
                        EINVAL);
        chain.push_back({backing, backing_format});
    }
    return chain;
}

Result<UniqueFd> listen_vm_socket(const fs::path& path) {
    ::unlink(path.c_str());
    // Mode 0600 set before listen(): connecting needs write permission, root's (corrald's) only.
    return listen_unix_socket(path, {.backlog = 4, .permissions = 0600});
}

Result<void> copy_for_vm(const fs::path& from, const fs::path& to, gid_t gid) {
    auto source = TRY(open_for_vm(from, O_RDONLY));
    ::unlink(to.c_str());
    auto target = TRY(open_for_vm(to, O_WRONLY | O_CREAT | O_EXCL));
    if (::fchown(target.get(), static_cast<uid_t>(-1), gid) != 0 ||
        ::fchmod(target.get(), 0440) != 0)
        return fail_errno(fmt::format("cannot give {} to the VM's group", to.string()));
    for (;;) {
        ssize_t n = ::copy_file_range(source.get(), nullptr, target.get(), nullptr, 1u << 30, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno(fmt::format("cannot copy {} to {}", from.string(), to.string()));
        if (n == 0)
            break;
    }
    return {};
}

}  // namespace corral::engine
