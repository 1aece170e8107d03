#include "vmm/control/device_counters.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "vmm/devices/virtio/block/block_device.h"
#include "vmm/devices/virtio/net/net_device.h"
#include "vmm/devices/virtio/pci_transport.h"
#include "vmm/pci_setup.h"

namespace corral::vmm {
namespace {

const char* type_name(virtio::DeviceType type) {
    switch (type) {
        case virtio::DeviceType::Net: return "net";
        case virtio::DeviceType::Block: return "block";
        case virtio::DeviceType::Console: return "console";
        case virtio::DeviceType::Entropy: return "rng";
        case virtio::DeviceType::Gpu: return "gpu";
        case virtio::DeviceType::Input: return "input";
        case virtio::DeviceType::Balloon: return "balloon";
    }
    return "virtio";
}

}  // namespace

nlohmann::json device_counters_json(const PciDevices* pci) {
    nlohmann::json devices = nlohmann::json::array();
    if (!pci) return devices;
    std::map<std::string, unsigned> next_index;
    for (const auto& transport : pci->transports) {
        virtio::VirtioDevice& device = transport->device();
        std::string type = type_name(device.device_type());
        auto counters = device.counters();  // atomics: safe to read while the workers run
        nlohmann::json entry = {
            {"device", fmt::format("{}{}", type, next_index[type]++)},
            {"type", type},
            {"requests", counters.requests},
            {"bytes", counters.bytes},
            {"errors", counters.errors},
            {"rejected", counters.rejected_chains},
        };
        if (const auto* block = dynamic_cast<const virtio::BlockDevice*>(&device)) {
            const auto& extra = block->block_counters();
            entry["bytes_read"] = extra.bytes_read.load();
            entry["bytes_written"] = extra.bytes_written.load();
            entry["read_ops"] = extra.read_ops.load();
            entry["write_ops"] = extra.write_ops.load();
            entry["read_time_ns"] = extra.read_time_ns.load();
            entry["write_time_ns"] = extra.write_time_ns.load();
            entry["rejected_requests"] = extra.rejected_requests.load();
            entry["throttled"] = extra.throttled.load();
        } else if (const auto* net = dynamic_cast<const virtio::NetDevice*>(&device)) {
            auto extra = net->net_counters();
            entry["tx_frames"] = extra.tx_frames;
            entry["tx_bytes"] = extra.tx_bytes;
            entry["rx_frames"] = extra.rx_frames;
            entry["rx_bytes"] = extra.rx_bytes;
            entry["tx_dropped"] = extra.tx_dropped;
            entry["rx_dropped"] = extra.rx_dropped;
            entry["tx_rejected"] = extra.tx_rejected;
            entry["rx_rejected"] = extra.rx_rejected;
            entry["tx_throttled"] = extra.tx_throttled;
            entry["rx_throttled"] = extra.rx_throttled;
        }
        devices.push_back(std::move(entry));
    }
    return devices;
}

}  // namespace corral::vmm
