#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace corral::vmm {

namespace virtio {
class BalloonDevice;
}

/// The control answer to "balloon": with `target_bytes` (the memory the guest should keep, 1
/// byte to `ram_bytes`) sets the balloon's num_pages to the rest first. Answers
/// `{"ok":true,"ram_bytes","target_bytes","actual_bytes","guest_free_bytes",
/// "guest_available_bytes","guest_total_bytes","discarded_pages","reported_bytes","rejected_pfns"}`
/// (guest statistics null until the guest sent them), or `{"ok":false,"error":...}` without a
/// balloon (`balloon` null) or for a target out of range.
std::string balloon_answer(virtio::BalloonDevice* balloon, uint64_t ram_bytes, std::optional<uint64_t> target_bytes);

}  // namespace corral::vmm
