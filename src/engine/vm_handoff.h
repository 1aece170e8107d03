#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::engine {

/// Descriptors corrald opens for a VM process, which receives them as fds 3, 4, ... in the order
/// they were added (corral-shim maps them there and closes every other one). The VM process
/// then needs no path, permission or capability to reach its disks, taps and sockets, and can
/// reach nothing else.
class HandedFds {
public:
    /// Takes `fd`; returns the number it will have in the VM process.
    int add(UniqueFd fd);
    /// The descriptors, in order (still owned here).
    std::vector<int> raw() const;
    bool empty() const { return m_fds.empty(); }

private:
    std::vector<UniqueFd> m_fds;
};

/// One file of a disk's image chain.
struct ImageLayer {
    std::filesystem::path path;
    std::string format;          ///< "raw" or "qcow2"
    uint32_t qcow2_version = 0;  ///< the qcow2 header's version (2 or 3); 0 for raw
};

/// `path` and the backing files its qcow2 header names (recursively; relative names resolve
/// against the naming image's folder), top first. A backing file without a recorded format is
/// probed ("QFI\xfb": qcow2, else raw). EINVAL beyond 16 layers or for an unreadable header.
Result<std::vector<ImageLayer>> image_chain(const std::filesystem::path& path,
                                            const std::string& format);

/// Opens a file for the VM process: never through a symlink in the last component, close on
/// exec (the shim's dup2 clears that for the copy the VM gets).
Result<UniqueFd> open_for_vm(const std::filesystem::path& path, int flags);

/// A listening unix stream socket at `path` (a stale one is removed first), mode 0600: only
/// root (corrald) connects to it; the VM process accepts on the descriptor.
Result<UniqueFd> listen_vm_socket(const std::filesystem::path& path);

/// Copies `from` to `to` (owner: us, group `gid`, mode 0440), replacing `to`: the VM's own copy of
/// its kernel or initrd, readable by that VM only, wherever the original lives.
Result<void> copy_for_vm(const std::filesystem::path& from, const std::filesystem::path& to,
                         gid_t gid);

}  // namespace corral::engine
