#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "base/event_loop.h"
#include "base/result.h"
#include "display/framebuffer.h"

namespace corral::display {
class RfbServer;
}

namespace corral::vmm {

class Bus;
class GuestMemory;
class KvmGsiRouting;
class PciBus;
class PciConfigIo;
struct VmConfig;
namespace kvm {
class Vm;
}
namespace virtio {
class VirtioPciTransport;
class InputRouter;
class BalloonDevice;
}  // namespace virtio

/// The VM's PCI side: bus 0 with its host bridge and configuration ports, and the virtio
/// devices the config asks for, with the event loop their workers run on and the GSI routes
/// of their MSI-X vectors. Owned by the Vmm; destroying it stops the event loop first.
struct PciDevices {
    std::shared_ptr<EventLoop> loop;  // null when there is no virtio device
    std::unique_ptr<KvmGsiRouting> routing;
    std::shared_ptr<PciBus> bus;
    std::unique_ptr<PciConfigIo> config_io;
    std::vector<std::shared_ptr<virtio::VirtioPciTransport>> transports;
    /// With --display: the screen the virtio-gpu shows, and the viewers' way to the virtio
    /// keyboard and tablet. Null without a display.
    std::shared_ptr<corral::display::Framebuffer> framebuffer;
    std::unique_ptr<virtio::InputRouter> input;
    /// --balloon: the memory balloon, for the control socket's "balloon". Null without one.
    std::shared_ptr<virtio::BalloonDevice> balloon;
    /// --vnc / --vnc-view-only: the RFB server showing `framebuffer` (stopped first on destruction:
    /// it calls `input`).
    std::unique_ptr<corral::display::RfbServer> vnc;

    PciDevices();
    ~PciDevices();
};

/// First and last+1 address of the 32-bit MMIO window BARs are placed in; the DSDT's \_SB.PCI0
/// _CRS declares the same window (0xC0000000-0xFEBFFFFF).
constexpr uint64_t k_pci_mmio_window_start = 0xC0000000;
constexpr uint64_t k_pci_mmio_window_end = 0xFEC00000;

/// Attaches, in this order: the host bridge at 00:00.0 and configuration mechanism #1 on ports
/// 0xCF8 (1 byte), 0xCFA-0xCFB and 0xCFC-0xCFF (0xCF9 stays the reset control register);
/// then virtio-console (--virtio-console), virtio-rng (--rng), virtio-net (--net, in order) and
/// virtio-blk (--disk, in order), and with --display virtio-gpu, a virtio keyboard and a virtio
/// tablet, and with --balloon virtio-balloon (last, so that the others keep their slots), in
/// the next free slots, each
/// with a fixed 64-bit BAR from the MMIO window on `mmio`, MSI-X vectors routed through KVM
/// (irqfd + GSI routing) and a KVM ioeventfd per queue notify address.
/// `serial_output` is where the serial console's output goes (virtio-console without a socket
/// of its own writes there too).
Result<std::shared_ptr<PciDevices>> attach_pci_devices(const kvm::Vm& vm, const GuestMemory& memory, Bus& pio,
                                                       Bus& mmio, const VmConfig& config,
                                                       std::function<void(std::span<const uint8_t>)> serial_output);

}  // namespace corral::vmm
