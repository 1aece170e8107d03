#include "vmm/devices/legacy/reset_control.h"

#include <utility>

#include "base/log.h"
#include "vmm/devices/legacy/byte_access.h"

namespace corral::vmm {
namespace {

constexpr uint64_t k_register_count = 1;
constexpr uint8_t k_reset_cpu = 0x04;

}  // namespace

ResetControl::ResetControl(ResetCallback on_reset) : m_on_reset(std::move(on_reset)) {}

void ResetControl::read(uint64_t offset, std::span<uint8_t> data) {
    read_bytewise(offset, data, k_register_count, [this](uint64_t) { return m_value.load(); });
}

void ResetControl::write(uint64_t offset, std::span<const uint8_t> data) {
    write_bytewise(offset, data, k_register_count, [this](uint64_t, uint8_t value) {
        m_value.store(value & ~k_reset_cpu);
        if (value & k_reset_cpu) {
            log_debug("reset control: guest wrote 0x{:02x}, resetting", value);
            if (m_on_reset)
                m_on_reset();
        }
    });
}

}  // namespace corral::vmm
