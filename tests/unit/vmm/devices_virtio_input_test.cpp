#include "vmm/devices/virtio/input/input_device.h"

#include <gtest/gtest.h>
#include <linux/input.h>
#include <sys/eventfd.h>

#include <chrono>
#include <thread>

#include "base/event_fd.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingInterrupt;
using testing::TestRing;

constexpr uint64_t k_buffers = 0x40000;

class InputDeviceTest : public ::testing::Test {
protected:
    void activate(InputDevice& device) {
        std::vector<std::optional<ActiveQueue>> queues(2);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, ring.layout(), {}).value(), notify.fd()});
        ASSERT_TRUE(device.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt}));
    }
    /// Offers `count` 8-byte event buffers (descriptors `first`...).
    void offer(uint16_t first, uint16_t count) {
        for (uint16_t i = first; i < first + count; ++i) {
            ring.descriptor(i, k_buffers + 8ull * i, 8, k_desc_f_write);
            ring.publish(i);
        }
    }
    /// Waits (bounded) until the device has used `count` buffers.
    bool wait_used(uint16_t count) {
        for (int i = 0; i < 1000 && ring.used_idx() < count; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return ring.used_idx() == count;
    }
    InputEvent event(uint16_t slot) {
        uint32_t id = ring.used_element(slot).first;
        uint64_t at = k_buffers + 8ull * id;
        return {memory.read_object<uint16_t>(at).value(), memory.read_object<uint16_t>(at + 2).value(),
                memory.read_object<uint32_t>(at + 4).value()};
    }
    std::vector<uint8_t> config(InputDevice& device, uint8_t select, uint8_t subsel) {
        uint8_t bytes[2] = {select, subsel};
        device.write_config(0, bytes);
        std::array<uint8_t, InputDevice::k_config_size> all{};
        device.read_config(0, all);
        return std::vector<uint8_t>(all.begin() + 8, all.begin() + 8 + all[2]);
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing ring{memory, 16};
    EventFd notify = EventFd::create(EFD_NONBLOCK).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("input-test").value();
    RecordingInterrupt interrupt;
    std::shared_ptr<InputDevice> keyboard = InputDevice::create(loop, InputDevice::Kind::Keyboard).value();
    std::shared_ptr<InputDevice> tablet = InputDevice::create(loop, InputDevice::Kind::Tablet).value();
};

bool has_bit(const std::vector<uint8_t>& bits, unsigned code) {
    return code / 8 < bits.size() && (bits[code / 8] >> (code % 8)) & 1;
}

TEST_F(InputDeviceTest, ConfigurationDescribesAKeyboardAndATablet) {
    auto name = config(*keyboard, 1, 0);
    EXPECT_EQ(std::string(name.begin(), name.end()), "Corral virtio keyboard");
    EXPECT_EQ(config(*keyboard, 3, 0).size(), 8u) << "ID_DEVIDS";
    auto keys = config(*keyboard, 0x11, EV_KEY);
    for (unsigned code : {KEY_ESC, KEY_A, KEY_Z, KEY_ENTER, KEY_SPACE, KEY_LEFTSHIFT, KEY_F12, KEY_LEFTMETA,
                          KEY_UP, KEY_DELETE, KEY_KPENTER})
        EXPECT_TRUE(has_bit(keys, code)) << code;
    EXPECT_TRUE(config(*keyboard, 0x11, EV_ABS).empty());
    EXPECT_TRUE(config(*keyboard, 0x11, EV_REP).empty()) << "no guest autorepeat";

    auto buttons = config(*tablet, 0x11, EV_KEY);
    EXPECT_TRUE(has_bit(buttons, BTN_LEFT) && has_bit(buttons, BTN_RIGHT) && has_bit(buttons, BTN_MIDDLE));
    EXPECT_FALSE(has_bit(buttons, KEY_A));
    EXPECT_TRUE(has_bit(config(*tablet, 0x11, EV_REL), REL_WHEEL));
    auto axes = config(*tablet, 0x11, EV_ABS);
    EXPECT_TRUE(has_bit(axes, ABS_X) && has_bit(axes, ABS_Y));
    auto abs = config(*tablet, 0x12, ABS_Y);
    ASSERT_EQ(abs.size(), 20u);
    EXPECT_EQ(abs[4] | abs[5] << 8, 32767) << "max";
    EXPECT_TRUE(config(*tablet, 0x12, ABS_Z).empty());
    EXPECT_TRUE(config(*tablet, 0x99, 0).empty()) << "unknown select";
}

TEST_F(InputDeviceTest, KeysFromAnotherThreadArriveAsEventsWithSyn) {
    activate(*keyboard);
    offer(0, 4);
    InputRouter router(keyboard, tablet);
    std::thread viewer([&] { router.key(KEY_A, true); router.key(KEY_A, false); });
    viewer.join();
    ASSERT_TRUE(wait_used(4));
    EXPECT_EQ(event(0).type, EV_KEY);
    EXPECT_EQ(event(0).code, KEY_A);
    EXPECT_EQ(event(0).value, 1u);
    EXPECT_EQ(event(1).type, EV_SYN);
    EXPECT_EQ(event(2).value, 0u);
    EXPECT_EQ(event(3).type, EV_SYN);
    EXPECT_FALSE(interrupt.queue_signals.empty());
    keyboard->reset();
}

TEST_F(InputDeviceTest, EventsWaitForBuffersAndTheQueueIsBounded) {
    activate(*keyboard);
    InputRouter router(keyboard, tablet);
    for (size_t i = 0; i < InputDevice::k_max_pending; ++i) router.key(KEY_B, i % 2 == 0);
    EXPECT_GT(keyboard->counters().errors, 0u) << "reports beyond the bound are dropped";
    offer(0, 2);
    notify.signal();
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(event(0).code, KEY_B);
    EXPECT_EQ(event(0).value, 1u) << "the oldest first";
    keyboard->reset();
}

TEST_F(InputDeviceTest, NothingIsQueuedWhileTheDeviceIsNotActive) {
    InputRouter router(keyboard, tablet);
    router.key(KEY_A, true);
    EXPECT_EQ(keyboard->counters().errors, 1u);
    activate(*keyboard);
    offer(0, 1);
    notify.signal();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(ring.used_idx(), 0) << "the key pressed before the driver was up is not replayed";
    keyboard->reset();
}

TEST_F(InputDeviceTest, PointerBecomesAbsolutePositionButtonsAndWheel) {
    activate(*tablet);
    offer(0, 16);
    InputRouter router(keyboard, tablet);
    router.pointer(1023, 384, 1024, 768, 0b00001);  // left down, wheel up pressed
    router.pointer(0, 0, 1024, 768, 0b01000);       // left up, wheel up
    ASSERT_TRUE(wait_used(9));
    EXPECT_EQ(event(0).code, ABS_X);
    EXPECT_EQ(event(0).value, 32767u);
    EXPECT_EQ(event(1).code, ABS_Y);
    EXPECT_EQ(event(1).value, 384u * 32767 / 767);
    EXPECT_EQ(event(2).code, BTN_LEFT);
    EXPECT_EQ(event(2).value, 1u);
    EXPECT_EQ(event(3).type, EV_SYN);
    EXPECT_EQ(event(4).value, 0u) << "x 0";
    EXPECT_EQ(event(6).code, BTN_LEFT);
    EXPECT_EQ(event(6).value, 0u);
    EXPECT_EQ(event(7).code, REL_WHEEL);
    EXPECT_EQ(event(7).value, 1u);
    EXPECT_EQ(event(8).type, EV_SYN);
    tablet->reset();
}

}  // namespace
}  // namespace corral::vmm::virtio
