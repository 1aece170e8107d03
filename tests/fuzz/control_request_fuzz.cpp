// libFuzzer target for corral-vmm's control requests (vmm/control/control_request.h): each line
// a client sends on the control socket is parsed into a typed action. Whatever the bytes, the
// parser must answer with a request or a sentence, never crash; a disk_snapshot "bitmap" it
// accepts must carry a name of 1 to 1023 printable bytes and a prefix of at most 1023.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmm/control/control_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::vmm;
    auto parsed = parse_control_request(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!parsed) {
        if (parsed.error().message().empty())
            std::abort();  // every refusal says why
        (void)control_error_answer(parsed.error().message());
        return 0;
    }
    if (const auto& bitmap = parsed->disk_snapshot_bitmap) {
        if (parsed->action != ControlAction::DiskSnapshot || parsed->disk_snapshot_delete)
            std::abort();
        if (bitmap->name.empty() || bitmap->name.size() > 1023 || bitmap->replaces.size() > 1023)
            std::abort();
        for (char c : bitmap->name + bitmap->replaces)
            if (c <= ' ' || c >= 127)
                std::abort();
    }
    return 0;
}
