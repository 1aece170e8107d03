#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace corral::engine {

/// What corrald opened for QEMU, as fd numbers in the QEMU process (see HandedFds), and the
/// names QEMU reads in its working folder (the run folder). QEMU opens no host path itself.
struct QemuFiles {
    int console_socket = -1;  ///< listening unix socket RUN/console.sock
    int qmp_socket = -1;      ///< listening unix socket RUN/qmp.sock
    int console_log = -1;     ///< RUN/console.log, write-only
    /// One file of a disk's image chain: a QEMU fd set of an O_RDONLY descriptor, plus an
    /// O_RDWR one for a writable top layer (QEMU picks the one matching its access mode).
    struct Layer {
        std::string format;
        std::vector<int> fds;
        /// qcow2's lazy-refcounts=on (the written top layer of a version 3 image): without it, a
        /// savevm after a loadvm flushes once per cluster of the memory state it copies on write
        /// (bench/README.md: 35-43 s instead of under 1 s for 335 MiB). An image left open by a
        /// crash is marked dirty and has its refcounts rebuilt at its next read-write open
        /// (QEMU's and corral's qcow2 code both do).
        bool lazy_refcounts = false;
    };
    std::vector<std::vector<Layer>> disks;  ///< per LaunchSpec disk, top layer first
    std::vector<int> taps;                  ///< per LaunchSpec NIC, an attached tap queue
    std::string kernel = "kernel";          ///< relative to the run folder
    std::string initrd;                     ///< relative; empty when the spec has none
};

/// QEMU's own seccomp filter: no obsolete system calls, no set*uid/capabilities, no fork/exec,
/// no scheduler or affinity changes (every group QEMU 7.2's -sandbox can deny).
inline constexpr const char* k_qemu_sandbox =
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// The QEMU (TCG) command line for `spec`, argv[0] = `qemu`, over the descriptors and names in
/// `files`. Option values are escaped for QEMU (a ',' is doubled).
std::vector<std::string> qemu_command_line(const LaunchSpec& spec,
                                           const std::filesystem::path& qemu,
                                           const QemuFiles& files);

/// "qemu-system-x86_64 7.2.22" from `qemu --version` output's first line; empty if unrecognized.
std::string parse_qemu_version(const std::string& version_output);

}  // namespace corral::engine
