#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/inventory/inventory.h"
#include "daemon/storage_service.h"
#include "storage/copy.h"

namespace corral::daemon {

/// Where an image's parts come from when it is imported.
struct ImageSources {
    std::filesystem::path kernel;
    std::filesystem::path initrd;  // may be empty
    std::filesystem::path root;    // a raw or qcow2 file system image
    std::string cmdline;
    std::string description;
};

/// Images: what a VM boots (kernel, initramfs, and a root volume that VMs get linked clones of).
/// Kernel and initramfs are copied to <state-dir>/images/<name>/, the root into a pool as
/// volume "img-<name>".
class ImageService {
public:
    /// Reports progress; answers Cancel to stop an import (it then fails with ECANCELED, having
    /// removed what it made).
    using Progress = std::function<storage::Proceed(double fraction, const std::string& message)>;

    /// `guest_image_tool` is tools/guest-image (it builds the default image from Debian packages).
    ImageService(inventory::Inventory& inventory, StorageService& storage, std::filesystem::path state_dir,
                 std::filesystem::path guest_image_tool)
        : m_inventory(inventory),
          m_storage(storage),
          m_state_dir(std::move(state_dir)),
          m_tool(std::move(guest_image_tool)) {}

    /// The kernel command line of the default image: root on the first disk, a shell on the
    /// serial console, and a clean shutdown on Ctrl-Alt-Del or the ACPI power button.
    static constexpr const char* k_default_cmdline =
        "console=ttyS0 corral.root=/dev/vda corral.then=shell corral.shutdown=graceful corral.net=dhcp";

    /// The kernel command line of the desktop image: the default's, and corral.run starts the
    /// graphical session (/usr/local/sbin/corral-desktop, base64 as corral.run wants it).
    static constexpr const char* k_desktop_cmdline =
        "console=ttyS0 corral.root=/dev/vda corral.then=shell corral.shutdown=graceful corral.net=dhcp "
        "corral.run=L3Vzci9sb2NhbC9zYmluL2NvcnJhbC1kZXNrdG9w";

    /// Builds the default image with the guest-image tool and imports it as `name`.
    Result<inventory::ImageRecord> prepare_default(const std::string& name, const std::string& pool,
                                                   const Progress& progress);
    /// Builds the desktop image (`guest-image desktop`: X, jwm and xterm on a minimal Debian made
    /// by debootstrap; corrald must run as root) and imports it as `name`.
    Result<inventory::ImageRecord> prepare_desktop(const std::string& name, const std::string& pool,
                                                   const Progress& progress);
    /// Imports an image from files. All or nothing.
    Result<inventory::ImageRecord> import(const std::string& name, const std::string& pool,
                                          const ImageSources& sources, const Progress& progress);
    /// EBUSY while a VM uses the image or a volume is a linked clone of its root.
    Result<void> remove(const std::string& name);

private:
    /// Runs the guest-image tool with `arguments` and imports its kernel, initrd and the root
    /// disk it reports as `root_key`.
    Result<inventory::ImageRecord> build_and_import(const std::string& name, const std::string& pool,
                                                    const std::vector<std::string>& arguments,
                                                    const std::string& root_key, ImageSources sources,
                                                    const Progress& progress);

    inventory::Inventory& m_inventory;
    StorageService& m_storage;
    std::filesystem::path m_state_dir;
    std::filesystem::path m_tool;
};

}  // namespace corral::daemon
