#include "vmm/devices/bus.h"

#include <fmt/format.h>

namespace corral::vmm {

Result<void> Bus::insert(uint64_t base, uint64_t length, std::shared_ptr<BusDevice> device) {
    if (length == 0) return fail("bus range at 0x" + fmt::format("{:x}", base) + " is empty");
    auto next = m_ranges.lower_bound(base);
    if (next != m_ranges.end() && next->first < base + length)
        return fail(fmt::format("bus range 0x{:x}+{} overlaps a device at 0x{:x}", base, length,
                                next->first));
    if (next != m_ranges.begin()) {
        auto previous = std::prev(next);
        if (previous->first + previous->second.length > base)
            return fail(fmt::format("bus range 0x{:x}+{} overlaps a device at 0x{:x}", base,
                                    length, previous->first));
    }
    m_ranges.emplace(base, Range{length, std::move(device)});
    return {};
}

std::pair<BusDevice*, uint64_t> Bus::find(uint64_t address) const {
    auto it = m_ranges.upper_bound(address);
    if (it == m_ranges.begin()) return {nullptr, 0};
    --it;
    uint64_t offset = address - it->first;
    if (offset >= it->second.length) return {nullptr, 0};
    return {it->second.device.get(), offset};
}

bool Bus::read(uint64_t address, std::span<uint8_t> data) const {
    auto [device, offset] = find(address);
    if (!device) return false;
    device->read(offset, data);
    return true;
}

bool Bus::write(uint64_t address, std::span<const uint8_t> data) const {
    auto [device, offset] = find(address);
    if (!device) return false;
    device->write(offset, data);
    return true;
}

}  // namespace corral::vmm
