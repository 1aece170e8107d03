#include "daemon/image_service.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>

#include <fmt/format.h>

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

/// Runs `command` (no shell: argv) and returns its stdout; the error carries the exit status.
Result<std::string> run_capture(const std::vector<std::string>& argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno("pipe");
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        std::vector<char*> args;
        for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        _exit(127);
    }
    ::close(out[1]);
    std::string output;
    std::array<char, 4096> buffer;
    ssize_t got;
    while ((got = ::read(out[0], buffer.data(), buffer.size())) > 0 || (got < 0 && errno == EINTR))
        if (got > 0) output.append(buffer.data(), static_cast<size_t>(got));
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(fmt::format("{} failed (exit status {}); its messages are in corrald's log", argv[0],
                                WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    return output;
}

Result<void> copy_into(const fs::path& from, const fs::path& to) {
    std::error_code error;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
    if (error) return fail(fmt::format("copying {} to {}: {}", from.string(), to.string(), error.message()));
    return {};
}

}  // namespace

Result<inventory::ImageRecord> ImageService::prepare_default(const std::string& name, const std::string& pool,
                                                             const Progress& progress) {
    (void)progress(0.05, "building the guest image from Debian packages (kernel, busybox, modules)");
    return build_and_import(name, pool, {}, "rootfs",
                            {{}, {}, {}, k_default_cmdline,
                             "Debian 12 kernel, busybox root file system with the virtio modules"},
                            progress);
}

Result<inventory::ImageRecord> ImageService::prepare_desktop(const std::string& name, const std::string& pool,
                                                             const Progress& progress) {
    (void)progress(0.05, "building the desktop image from Debian packages (debootstrap: X, jwm, xterm)");
    return build_and_import(name, pool, {"desktop"}, "desktop_rootfs",
                            {{}, {}, {}, k_desktop_cmdline,
                             "Debian 12 desktop: X with jwm and xterm (give the VM a display: --display 1024x768)"},
                            progress);
}

Result<inventory::ImageRecord> ImageService::build_and_import(const std::string& name, const std::string& pool,
                                                              const std::vector<std::string>& arguments,
                                                              const std::string& root_key, ImageSources sources,
                                                              const Progress& progress) {
    if (m_inventory.get_image(name)) return fail(fmt::format("an image named {} already exists", name), EEXIST);
    std::vector<std::string> argv{m_tool.string()};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    // guest-image prints KEY=PATH lines (kernel=, initrd=, rootfs=, desktop_rootfs=, ...).
    auto output = TRY(run_capture(argv));
    std::map<std::string, std::string> paths;
    size_t start = 0;
    while (start < output.size()) {
        size_t end = output.find('\n', start);
        if (end == std::string::npos) end = output.size();
        std::string line = output.substr(start, end - start);
        if (auto eq = line.find('='); eq != std::string::npos) paths[line.substr(0, eq)] = line.substr(eq + 1);
        start = end + 1;
    }
    for (const std::string& key : {std::string("kernel"), std::string("initrd"), root_key}) {
        if (paths[key].empty()) return fail(fmt::format("{} did not report a {} path", m_tool.string(), key));
    }
    sources.kernel = paths["kernel"];
    sources.initrd = paths["initrd"];
    sources.root = paths[root_key];
    return import(name, pool, sources, [&](double fraction, const std::string& message) {
        return progress(0.3 + 0.7 * fraction, message);
    });
}

Result<inventory::ImageRecord> ImageService::import(const std::string& name, const std::string& pool_name,
                                                    const ImageSources& sources, const Progress& progress) {
    TRY_VOID(storage::pool::check_name("image name", name));
    if (m_inventory.get_image(name)) return fail(fmt::format("an image named {} already exists", name), EEXIST);
    for (const auto& [what, path] : {std::pair{"kernel", sources.kernel}, {"root", sources.root}}) {
        if (path.empty() || !fs::is_regular_file(path))
            return fail(fmt::format("image {}: {} file {} does not exist", name, what, path.string()), EINVAL);
    }
    if (!sources.initrd.empty() && !fs::is_regular_file(sources.initrd))
        return fail(fmt::format("image {}: initrd file {} does not exist", name, sources.initrd.string()), EINVAL);
    auto* pool = TRY(m_storage.pool(pool_name));

    fs::path folder = m_state_dir / "images" / name;
    std::error_code error;
    fs::remove_all(folder, error);
    fs::create_directories(folder, error);
    if (error) return fail(fmt::format("creating {}: {}", folder.string(), error.message()));
    auto undo_files = [&] { fs::remove_all(folder, error); };

    auto cancelled = [&] {
        undo_files();
        return fail(fmt::format("the import of image {} was cancelled", name), ECANCELED);
    };
    if (progress(0.0, "copying the kernel and initramfs") == storage::Proceed::Cancel) return cancelled();
    inventory::ImageRecord record;
    record.name = name;
    record.pool = pool_name;
    record.kernel = (folder / "kernel").string();
    if (auto copied = copy_into(sources.kernel, record.kernel); !copied) {
        undo_files();
        return fail(copied.error());
    }
    if (!sources.initrd.empty()) {
        record.initrd = (folder / "initrd.img").string();
        if (auto copied = copy_into(sources.initrd, record.initrd); !copied) {
            undo_files();
            return fail(copied.error());
        }
    }
    if (progress(0.1, "importing the root file system") == storage::Proceed::Cancel) return cancelled();
    record.root_volume = "img-" + name;
    auto imported = pool->import_volume(record.root_volume, sources.root.string(), [&](uint64_t done, uint64_t total) {
        return progress(0.1 + 0.9 * (total ? double(done) / double(total) : 1.0),
                        fmt::format("importing the root file system: {} of {} MiB", done >> 20, total >> 20));
    });
    if (!imported) {
        undo_files();
        return fail(imported.error().with_context("importing the root file system"));
    }
    record.cmdline = sources.cmdline;
    record.description = sources.description;
    auto stored = m_inventory.create_image(record);
    if (!stored) {
        ignore_error(pool->delete_volume(record.root_volume),
                     "undoing a failed import: the inventory's error is the one to report");
        undo_files();
        return fail(stored.error());
    }
    return stored;
}

Result<void> ImageService::remove(const std::string& name) {
    auto image = TRY(m_inventory.get_image(name));
    for (const auto& vm : TRY(m_inventory.list_vms())) {
        if (vm.image == name) return fail(fmt::format("image {} is used by VM {}", name, vm.name), EBUSY);
    }
    auto* pool = TRY(m_storage.pool(image.pool));
    if (auto info = pool->volume_info(image.root_volume); info && !info->clones.empty())
        return fail(fmt::format("image {}'s root volume has linked clones ({}...)", name, info->clones.front()), EBUSY);
    if (auto gone = pool->delete_volume(image.root_volume); !gone && gone.error().errno_value() != ENOENT)
        return fail(gone.error());
    TRY_VOID(m_inventory.delete_image(name));
    std::error_code error;
    fs::remove_all(m_state_dir / "images" / name, error);
    return {};
}

}  // namespace corral::daemon
