#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral {

/// `bytes` random bytes from getrandom(2), as lowercase hex: names nobody can guess in advance.
std::string random_hex(size_t bytes);

/// A random GUID (RFC 4122 version 4), "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx": a VM
/// generation ID as QEMU's vmgenid device takes it.
std::string random_guid();

/// True for text in random_guid()'s shape (any version): 8-4-4-4-12 hex digits.
bool is_guid(std::string_view text);

/// A temporary name in the same folder as `final_path` (so a rename commits it):
/// ".NAME.corral-tmp-<32 random hex digits>". Hidden, and unpredictable, so another local user
/// cannot plant a symlink where a privileged corrald will create a file.
std::string temporary_path_for(const std::string& final_path);

/// Creates `path` for reading and writing with O_EXCL|O_NOFOLLOW|O_CLOEXEC: fails with EEXIST
/// when anything (a symlink included) is already there, and never follows one. The mode is set
/// with fchmod, so the umask cannot widen or narrow it.
Result<UniqueFd> create_exclusive(const std::string& path, mode_t mode);

/// Replaces `path` with a file holding `data` (mode `mode`): written under temporary_path_for,
/// fsynced, then renamed over `path` (rename replaces a symlink, it never follows one).
Result<void> write_file_atomically(const std::string& path, std::string_view data, mode_t mode);

}  // namespace corral
