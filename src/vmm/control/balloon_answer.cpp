#include "vmm/control/balloon_answer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "vmm/control/control_request.h"
#include "vmm/devices/virtio/balloon/balloon_device.h"

namespace corral::vmm {

std::string balloon_answer(virtio::BalloonDevice* balloon, uint64_t ram_bytes, std::optional<uint64_t> target_bytes) {
    using nlohmann::json;
    using virtio::BalloonDevice;
    if (!balloon)
        return control_error_answer("this VM has no memory balloon (start corral-vmm with --balloon)");
    if (target_bytes) {
        if (*target_bytes == 0 || *target_bytes > ram_bytes)
            return control_error_answer(
                fmt::format("balloon's \"target_bytes\" must be from 1 to {} (the VM's memory)", ram_bytes));
        // num_pages is a le32 of 4 KiB pages: 16 TiB at most, far beyond any VM here.
        const uint64_t pages = (ram_bytes - *target_bytes) / BalloonDevice::k_page_size;
        balloon->set_target_pages(static_cast<uint32_t>(std::min<uint64_t>(pages, UINT32_MAX)));
    }
    const auto status = balloon->status();
    auto optional = [](const std::optional<uint64_t>& value) { return value ? json(*value) : json(nullptr); };
    const uint64_t held = uint64_t{status.actual_pages} * BalloonDevice::k_page_size;
    const uint64_t target = uint64_t{status.target_pages} * BalloonDevice::k_page_size;
    json answer{{"ok", true},
                {"ram_bytes", ram_bytes},
                {"target_bytes", ram_bytes > target ? ram_bytes - target : 0},
                {"actual_bytes", ram_bytes > held ? ram_bytes - held : 0},
                {"guest_free_bytes", optional(status.stats.free_bytes)},
                {"guest_available_bytes", optional(status.stats.available_bytes)},
                {"guest_total_bytes", optional(status.stats.total_bytes)},
                {"discarded_pages", status.discarded_pages},
                {"reported_bytes", status.reported_bytes},
                {"rejected_pfns", status.rejected_pfns}};
    return answer.dump();
}

}  // namespace corral::vmm
