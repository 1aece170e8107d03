#include "vmm/pci_setup.h"

#include <fmt/format.h>

#include "base/log.h"
#include "display/rfb_server.h"
#include "vmm/config/vm_config.h"
#include "vmm/console/socket_console_input.h"
#include "vmm/devices/bus.h"
#include "vmm/devices/pci/host_bridge.h"
#include "vmm/devices/pci/pci_bus.h"
#include "vmm/devices/virtio/balloon/balloon_device.h"
#include "vmm/devices/virtio/block/open_disk.h"
#include "vmm/devices/virtio/console/console_device.h"
#include "vmm/devices/virtio/gpu/gpu_device.h"
#include "vmm/devices/virtio/input/input_device.h"
#include "vmm/devices/virtio/net/net_device.h"
#include "vmm/devices/virtio/pci_transport.h"
#include "vmm/devices/virtio/rng/rng_device.h"
#include "vmm/kvm/vm.h"
#include "vmm/kvm_msi.h"

namespace corral::vmm {
namespace {

std::optional<TokenBucketConfig> bucket(uint64_t rate) {
    if (rate == 0) return std::nullopt;
    return TokenBucketConfig{rate, 0};  // burst: one second's worth
}

virtio::NetRateLimits net_rate_limits(const NetConfig& nic) {
    return {.rx_bytes = bucket(nic.rx.bytes_per_second),
            .rx_frames = bucket(nic.rx.packets_per_second),
            .tx_bytes = bucket(nic.tx.bytes_per_second),
            .tx_frames = bucket(nic.tx.packets_per_second)};
}

}  // namespace

PciDevices::PciDevices() = default;

PciDevices::~PciDevices() {
    vnc.reset();  // viewers' input goes to the devices: stop it first
    // Device workers touch guest memory: stop them before anything else goes away.
    if (loop) loop->stop();
}

Result<std::shared_ptr<PciDevices>> attach_pci_devices(const kvm::Vm& vm, const GuestMemory& memory, Bus& pio,
                                                       Bus& mmio, const VmConfig& config,
                                                       std::function<void(std::span<const uint8_t>)> serial_output) {
    auto pci = std::make_shared<PciDevices>();
    pci->bus = std::make_shared<PciBus>();
    TRY_VOID(pci->bus->attach(0, std::make_shared<PciHostBridge>()));
    pci->config_io = std::make_unique<PciConfigIo>(pci->bus);
    TRY_VOID(pio.insert(PciConfigIo::k_address_port, 1, pci->config_io->address_port()));
    TRY_VOID(pio.insert(PciConfigIo::k_address_high_port, 2, pci->config_io->address_high_port()));
    TRY_VOID(pio.insert(PciConfigIo::k_data_port, 4, pci->config_io->data_port()));

    if (!config.virtio_console && !config.rng && config.nets.empty() && config.disks.empty() && !config.has_display() &&
        !config.balloon)
        return pci;
    pci->loop = TRY(EventLoop::start("virtio-devices"));
    pci->routing = std::make_unique<KvmGsiRouting>(vm);

    // Visible order: console first, then entropy.
    std::vector<std::shared_ptr<virtio::VirtioDevice>> devices;
    if (config.virtio_console && config.virtio_console_socket_path.empty()) {
        devices.push_back(std::make_shared<virtio::ConsoleDevice>(pci->loop, std::move(serial_output)));
    } else if (config.virtio_console) {
        std::shared_ptr<SocketConsole> socket =
            TRY(SocketConsole::listen(config.virtio_console_socket_path, "--virtio-console"));
        auto sink = [socket](std::span<const uint8_t> bytes) { socket->write_output(bytes); };
        devices.push_back(std::make_shared<virtio::ConsoleDevice>(pci->loop, std::move(sink),
                                                                  std::make_unique<SocketConsoleInput>(socket)));
    }
    if (config.rng) devices.push_back(std::make_shared<virtio::RngDevice>(pci->loop));
    // Then the NICs, in --net order (the guest names them eth0, eth1, ... in slot order).
    for (size_t i = 0; i < config.nets.size(); ++i) {
        const NetConfig& nic = config.nets[i];
        auto tap = TRY_CONTEXT(nic.tap ? corral::net::Tap::open(*nic.tap) : corral::net::Tap::adopt(*nic.fd),
                               fmt::format("--net #{}", i + 1));
        devices.push_back(
            std::make_shared<virtio::NetDevice>(pci->loop, std::move(tap), nic.mac, net_rate_limits(nic)));
    }
    // Then the disks, in --disk order: the guest names them vda, vdb, ... in slot order. Each
    // has its own worker thread (see virtio::BlockDevice), not the shared event loop.
    for (const DiskConfig& disk : config.disks)
        devices.push_back(std::make_shared<virtio::BlockDevice>(TRY(virtio::open_disk(disk)),
                                                                virtio::block_options(disk)));
    // Then the display: the GPU, the keyboard and the tablet.
    if (config.has_display()) {
        pci->framebuffer = std::make_shared<display::Framebuffer>(config.display_width, config.display_height);
        devices.push_back(std::make_shared<virtio::GpuDevice>(pci->loop, pci->framebuffer));
        auto keyboard = TRY(virtio::InputDevice::create(pci->loop, virtio::InputDevice::Kind::Keyboard));
        auto tablet = TRY(virtio::InputDevice::create(pci->loop, virtio::InputDevice::Kind::Tablet));
        devices.push_back(keyboard);
        devices.push_back(tablet);
        pci->input = std::make_unique<virtio::InputRouter>(keyboard, tablet);
    }
    // Last, the memory balloon: VMs without one keep the slots they always had.
    if (config.balloon) {
        pci->balloon = std::make_shared<virtio::BalloonDevice>(pci->loop);
        devices.push_back(pci->balloon);
    }

    // KVM_CAP_IOEVENTFD_ANY_LENGTH: length 0 matches a notify write of any size.
    uint32_t notify_length = vm.check_extension(KVM_CAP_IOEVENTFD_ANY_LENGTH) ? 0 : 2;
    uint64_t next_bar = k_pci_mmio_window_start;
    for (auto& device : devices) {
        uint64_t size = virtio::VirtioPciTransport::k_bar_size;
        uint64_t bar = (next_bar + size - 1) / size * size;
        if (bar + size > k_pci_mmio_window_end) return fail("the PCI MMIO window is full");
        next_bar = bar + size;
        auto vectors = TRY(KvmMsiVectors::create(vm, *pci->routing,
                                                 virtio::VirtioPciTransport::vector_count(*device)));
        auto transport = TRY(virtio::VirtioPciTransport::create(device, memory, bar, std::move(vectors)));
        TRY_VOID(mmio.insert(bar, size, transport));
        for (uint16_t queue = 0; queue < transport->queue_count(); ++queue)
            TRY_CONTEXT(vm.register_ioeventfd(transport->notify_event_fd(queue), transport->notify_address(queue),
                                              notify_length, kvm::IoSpace::Mmio),
                        fmt::format("virtio notify ioeventfd at 0x{:x}", transport->notify_address(queue)));
        unsigned slot = TRY(pci->bus->free_slot());
        TRY_VOID(pci->bus->attach(slot, transport));
        log_debug("PCI 00:{:02x}.0: virtio device type {}, BAR 0 at 0x{:x}", slot,
                  static_cast<uint32_t>(device->device_type()), bar);
        pci->transports.push_back(std::move(transport));
    }
    if (!config.vnc_socket_path.empty() || !config.vnc_view_only_socket_path.empty()) {
        display::RfbServer::Options options{.socket_path = config.vnc_socket_path,
                                            .view_only_socket_path = config.vnc_view_only_socket_path,
                                            .name = "corral-vmm"};
        pci->vnc = TRY_CONTEXT(display::RfbServer::start(pci->framebuffer, pci->input.get(), options), "--vnc");
        log_debug("VNC on {}{}{}", config.vnc_socket_path,
                  config.vnc_view_only_socket_path.empty() ? "" : ", view-only on ",
                  config.vnc_view_only_socket_path);
    }
    return pci;
}

}  // namespace corral::vmm
