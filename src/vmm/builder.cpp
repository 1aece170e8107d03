// Builds a Vmm for booting a kernel: the visible, ordered list of what a VM is made of.

#include <fcntl.h>

#include <fmt/format.h>

#include "base/log.h"
#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/lapic.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/long_mode.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/msrs.h"
#include "vmm/arch/x86_64/ports.h"
#include "vmm/arch/x86_64/reset_vector.h"
#include "vmm/boot/boot_params.h"
#include "vmm/boot/cmdline.h"
#include "vmm/boot/initrd.h"
#include "vmm/boot/kernel_loader.h"
#include "vmm/boot_files.h"
#include "vmm/devices/legacy/acpi_power.h"
#include "vmm/devices/legacy/boot_timing_port.h"
#include "vmm/devices/legacy/i8042.h"
#include "vmm/devices/legacy/reset_control.h"
#include "vmm/devices/legacy/rtc.h"
#include "vmm/devices/legacy/serial.h"
#include "vmm/console/socket_console.h"
#include "vmm/kvm_interrupt_line.h"
#include "vmm/pci_setup.h"
#include "vmm/vmm.h"
#include "vmm/snapshot/cpu_compat.h"
#include "vmm/snapshot/snapshot_file.h"

namespace corral::vmm {
namespace {

/// KVM features the monitor cannot work without.
Result<void> check_kvm_capabilities(const kvm::System& system) {
    struct Required {
        long capability;
        const char* name;
    };
    for (auto [capability, name] : {Required{KVM_CAP_IRQCHIP, "in-kernel irqchip"},
                                    Required{KVM_CAP_USER_MEMORY, "user memory"},
                                    Required{KVM_CAP_PIT2, "in-kernel PIT"},
                                    Required{KVM_CAP_IMMEDIATE_EXIT, "immediate exit"},
                                    Required{KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID"}}) {
        if (!system.check_extension(capability))
            return fail(fmt::format("this KVM lacks a required feature: {}", name));
    }
    return {};
}

Result<void> map_guest_memory(const kvm::Vm& vm, const GuestMemory& memory) {
    uint32_t slot = 0;
    for (const auto& region : memory.regions())
        TRY_VOID(vm.set_user_memory_region(slot++, region.guest_address, region.size, region.host));
    return {};
}

/// Writes what the kernel finds in memory at boot: kernel, initrd, command line, boot_params,
/// MP and ACPI tables, GDT and page tables. Returns the entry point.
Result<uint64_t> write_boot_memory(const GuestMemory& memory, const BootFiles& files,
                                   const VmConfig& config) {
    auto kernel = TRY(load_kernel(memory, files.kernel, files.kernel_bytes));
    std::optional<InitrdLocation> initrd;
    if (files.initrd_bytes)
        initrd = TRY(load_initrd(memory, *files.initrd_bytes, kernel.end, files.kernel.initrd_addr_max));
    auto cmdline = TRY(write_cmdline(memory, config.cmdline, files.kernel.cmdline_size));
    auto e820 = x86::build_e820_map(memory);
    TRY_VOID(write_boot_params(memory, TRY(build_boot_params(kernel.setup_header, e820, cmdline, initrd))));
    TRY_VOID(x86::write_mptable(memory, config.cpus));
    TRY_VOID(x86::write_acpi_tables(memory, config.cpus));
    TRY_VOID(x86::write_boot_gdt(memory));
    TRY_VOID(x86::write_identity_page_tables(memory));
    TRY_VOID(x86::write_reset_vector_stub(memory));
    return kernel.entry;
}

Result<void> configure_vcpu(const kvm::Vcpu& vcpu, std::span<const kvm_cpuid_entry2> supported_cpuid,
                            uint32_t cpu_count, uint64_t entry) {
    auto cpuid = x86::shape_cpuid(supported_cpuid, vcpu.id(), cpu_count);
    TRY_VOID(vcpu.set_cpuid(cpuid));
    auto msrs = x86::boot_msrs();
    TRY_VOID(vcpu.set_msrs(msrs));
    auto lapic = TRY(vcpu.lapic());
    x86::set_virtual_wire_mode(lapic);
    TRY_VOID(vcpu.set_lapic(lapic));
    // Application processors keep KVM's reset state and wait for INIT-SIPI from the guest.
    if (vcpu.id() != 0) return {};
    TRY_VOID(vcpu.set_fpu(x86::boot_fpu()));
    TRY_VOID(vcpu.set_regs(x86::long_mode_regs(entry, x86::k_boot_params_address)));
    auto sregs = TRY(vcpu.sregs());
    TRY_VOID(vcpu.set_sregs(x86::long_mode_sregs(sregs)));
    return {};
}

/// KVM with what the monitor needs, and a VM with its in-kernel irqchip and PIT.
Result<std::pair<kvm::System, kvm::Vm>> create_kvm_vm() {
    auto system = TRY(kvm::System::open());
    TRY_VOID(check_kvm_capabilities(system));
    auto vm = TRY(system.create_vm());
    TRY_VOID(vm.set_tss_address(x86::k_kvm_tss_address));
    TRY_VOID(vm.set_identity_map_address(x86::k_kvm_identity_map_address));
    TRY_VOID(vm.create_irqchip());
    TRY_VOID(vm.create_pit2());
    return std::pair{std::move(system), std::move(vm)};
}

/// Refuses when this host cannot give vCPU i the features of `cpuids[i]` (the table it was
/// given where it ran), naming the missing features.
Result<void> check_cpu_features(const kvm::System& system, std::span<const std::vector<kvm_cpuid_entry2>> cpuids) {
    auto supported = TRY(system.supported_cpuid());
    for (uint32_t id = 0; id < cpuids.size(); ++id) {
        auto here = x86::shape_cpuid(supported, id, static_cast<uint32_t>(cpuids.size()));
        auto missing = snapshot::missing_cpu_features(cpuids[id], here);
        if (!missing.empty()) {
            std::string list;
            for (const auto& feature : missing) list += (list.empty() ? "" : ", ") + feature;
            return fail(ErrorKind::Unavailable, fmt::format("the guest saw CPU features this host lacks: {}", list));
        }
    }
    return {};
}

}  // namespace

Result<IncomingVm> prepare_incoming_vm(const VmConfig& config, std::span<const std::vector<kvm_cpuid_entry2>> cpuids) {
    auto [system, vm] = TRY(create_kvm_vm());
    TRY_VOID(check_cpu_features(system, cpuids));
    auto memory = TRY(GuestMemory::create(config.memory_bytes, config.page_backing));
    TRY_VOID(map_guest_memory(vm, memory));
    return IncomingVm{std::move(system), std::move(vm), std::move(memory)};
}

Result<std::unique_ptr<Vmm>> build_vmm_for_boot(const VmConfig& config, const BootFiles& files) {
    auto [system, vm] = TRY(create_kvm_vm());
    auto memory = TRY(GuestMemory::create(config.memory_bytes, config.page_backing));
    TRY_VOID(map_guest_memory(vm, memory));
    uint64_t entry = TRY(write_boot_memory(memory, files, config));
    return build_vmm(config, std::move(system), std::move(vm), std::move(memory), entry);
}

Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, kvm::System system, kvm::Vm vm, GuestMemory memory,
                                       std::optional<uint64_t> boot_entry) {
    // The display devices have no saved form (see GpuDevice), and the VMM refuses to snapshot or
    // migrate a VM with one: a saved configuration asking for a display was not made by us.
    if (!boot_entry && config.has_display())
        return fail(ErrorKind::Invalid, "snapshots of VMs with a display are not supported yet");
    auto exit_event = TRY(EventFd::create());
    std::unique_ptr<Vmm> vmm(
        new Vmm(config, std::move(system), std::move(vm), std::move(memory), std::move(exit_event)));
    ExitLatch* latch = &vmm->m_exits;
    auto reset = [latch] { latch->report({VmExitReason::Reset, "guest reset"}); };
    auto power_off = [latch] { latch->report({VmExitReason::PowerOff, "ACPI S5"}); };

    // Legacy devices, in port order.
    vmm->m_com1_irq = std::make_unique<KvmInterruptLine>(vmm->m_vm, x86::k_com1_irq);
    vmm->m_keyboard_irq = std::make_unique<KvmInterruptLine>(vmm->m_vm, x86::k_keyboard_irq);
    vmm->m_mouse_irq = std::make_unique<KvmInterruptLine>(vmm->m_vm, x86::k_mouse_irq);
    vmm->m_i8042 = std::make_shared<I8042>(reset, vmm->m_keyboard_irq.get(), vmm->m_mouse_irq.get());
    TRY_VOID(vmm->m_pio_bus.insert(x86::k_i8042_port, x86::k_i8042_port_count, vmm->m_i8042));
    vmm->m_rtc = std::make_shared<Rtc>();
    TRY_VOID(vmm->m_pio_bus.insert(x86::k_rtc_port, x86::k_rtc_port_count, vmm->m_rtc));
    if (config.console == ConsoleKind::Stdio) {
        vmm->m_serial = std::make_shared<Serial>(vmm->m_com1_irq.get(), &StdioConsole::write_output);
        vmm->m_console.emplace(TRY(StdioConsole::open()));
    } else if (config.console == ConsoleKind::Socket) {
        vmm->m_socket_console = TRY(SocketConsole::listen(config.console_socket_path));
        SocketConsole* socket_console = vmm->m_socket_console.get();
        vmm->m_serial = std::make_shared<Serial>(
            vmm->m_com1_irq.get(), [socket_console](std::span<const uint8_t> bytes) { socket_console->write_output(bytes); });
    } else {
        vmm->m_serial = std::make_shared<Serial>(vmm->m_com1_irq.get(), [](std::span<const uint8_t>) {});
    }
    TRY_VOID(vmm->m_pio_bus.insert(x86::k_com1_port, x86::k_com1_port_count, vmm->m_serial));
    vmm->m_boot_timing = std::make_shared<BootTimingPort>();
    TRY_VOID(vmm->m_pio_bus.insert(x86::k_boot_timing_port, 1, vmm->m_boot_timing));
    vmm->m_acpi = std::make_shared<AcpiSleepControl>(power_off);
    TRY_VOID(vmm->m_pio_bus.insert(x86::k_acpi_sleep_control_port, 2, vmm->m_acpi));
    TRY_VOID(vmm->m_pio_bus.insert(x86::k_reset_control_port, 1,
                                   std::make_shared<ResetControl>(reset)));
    // PCI bus 0 (ports 0xCF8, 0xCFA, 0xCFC around ResetControl's 0xCF9) and virtio devices.
    std::function<void(std::span<const uint8_t>)> serial_output = [](std::span<const uint8_t>) {};
    if (config.console == ConsoleKind::Stdio) {
        serial_output = &StdioConsole::write_output;
    } else if (config.console == ConsoleKind::Socket) {
        SocketConsole* socket_console = vmm->m_socket_console.get();  // outlives the devices (see vmm.h)
        serial_output = [socket_console](std::span<const uint8_t> bytes) { socket_console->write_output(bytes); };
    }
    vmm->m_pci = TRY(attach_pci_devices(vmm->m_vm, vmm->m_memory, vmm->m_pio_bus, vmm->m_mmio_bus, config,
                                        std::move(serial_output)));

    auto supported_cpuid = TRY(vmm->m_system.supported_cpuid());
    VcpuContext context{&vmm->m_pio_bus, &vmm->m_mmio_bus, &vmm->m_exits, &vmm->m_unhandled};
    for (uint32_t id = 0; id < config.cpus; ++id) {
        auto vcpu = TRY(vmm->m_vm.create_vcpu(id));
        // From a snapshot, the vCPUs get their saved state instead (Vmm::restore_state()).
        if (boot_entry)
            TRY_CONTEXT(configure_vcpu(vcpu, supported_cpuid, config.cpus, *boot_entry),
                        fmt::format("setting up vCPU {}", id));
        vmm->m_vcpus.push_back(std::make_unique<VcpuRunner>(std::move(vcpu), context));
    }
    log_debug("VM built: {} vCPUs, {} MiB", config.cpus, config.memory_bytes >> 20);
    return vmm;
}

Result<std::unique_ptr<Vmm>> build_vmm_from_snapshot(const std::string& dir, const ConfigAdjuster& adjust) {
    auto state = TRY_CONTEXT(snapshot::read_snapshot(dir), fmt::format("restoring {}", dir));
    if (adjust) TRY_CONTEXT(adjust(state.config), fmt::format("restoring {}", dir));
    auto [system, vm] = TRY(create_kvm_vm());
    // Refuse before anything else is built: a guest that saw CPU features this host lacks
    // would fault (or worse, misbehave) when it uses them.
    std::vector<std::vector<kvm_cpuid_entry2>> cpuids;
    for (const auto& vcpu : state.vcpus) cpuids.push_back(vcpu.cpuid);
    TRY_CONTEXT(check_cpu_features(system, cpuids), fmt::format("restoring {}", dir));
    std::string memory_path = dir + "/" + snapshot::k_memory_file;
    UniqueFd memory_fd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!memory_fd.valid()) return fail_errno(fmt::format("restoring {}: opening {}", dir, memory_path));
    // The mapping keeps the file; the fd can go.
    auto memory = TRY(GuestMemory::map_private_file(memory_fd.get(), state.memory_bytes));
    TRY_VOID(map_guest_memory(vm, memory));
    auto vmm = TRY(build_vmm(state.config, std::move(system), std::move(vm), std::move(memory), std::nullopt));
    TRY_CONTEXT(vmm->restore_state(state), fmt::format("restoring {}", dir));
    log_info("restored the VM from {}", dir);
    return vmm;
}

}  // namespace corral::vmm
