#include "vmm/devices/legacy/ps2_keyboard.h"

#include <gtest/gtest.h>

#include <vector>

namespace corral::vmm {
namespace {

using Bytes = std::vector<uint8_t>;

class Ps2KeyboardTest : public ::testing::Test {
protected:
    /// Sends `byte` and returns everything the keyboard queued.
    Bytes send(uint8_t byte, Translation translation = Translation::Off) {
        keyboard.receive(byte, translation);
        return drain();
    }
    Bytes drain() {
        Bytes bytes;
        while (keyboard.has_output())
            bytes.push_back(keyboard.pop_output());
        return bytes;
    }

    Ps2Keyboard keyboard;
};

TEST_F(Ps2KeyboardTest, ScansFromPowerOnWithNothingQueued) {
    EXPECT_FALSE(keyboard.has_output());
    EXPECT_TRUE(keyboard.scanning());
    EXPECT_EQ(keyboard.scancode_set(), 2);
}

TEST_F(Ps2KeyboardTest, ResetAcksThenPassesItsSelfTest) {
    EXPECT_EQ(send(0xFF), (Bytes{0xFA, 0xAA}));
    EXPECT_TRUE(keyboard.scanning());
    EXPECT_EQ(keyboard.leds(), 0);
}

TEST_F(Ps2KeyboardTest, GetIdIsAnMf2KeyboardTranslatedOrNot) {
    EXPECT_EQ(send(0xF2), (Bytes{0xFA, 0xAB, 0x83}));
    // Through a translating 8042 the second byte reads as 0x41 (Linux then logs id ab41).
    EXPECT_EQ(send(0xF2, Translation::On), (Bytes{0xFA, 0xAB, 0x41}));
}

TEST_F(Ps2KeyboardTest, EnableDisableAndDefaults) {
    EXPECT_EQ(send(0xF5), (Bytes{0xFA}));
    EXPECT_FALSE(keyboard.scanning());
    EXPECT_EQ(send(0xF4), (Bytes{0xFA}));
    EXPECT_TRUE(keyboard.scanning());
    send(0xF5);
    EXPECT_EQ(send(0xF6), (Bytes{0xFA}));
    EXPECT_TRUE(keyboard.scanning());
}

TEST_F(Ps2KeyboardTest, LedsTakeAnArgument) {
    EXPECT_EQ(send(0xED), (Bytes{0xFA}));
    EXPECT_EQ(send(0x05), (Bytes{0xFA}));
    EXPECT_EQ(keyboard.leds(), 0x05);
    EXPECT_EQ(send(0xF2), (Bytes{0xFA, 0xAB, 0x83})) << "the argument was consumed";
}

TEST_F(Ps2KeyboardTest, TypematicTakesAnArgument) {
    EXPECT_EQ(send(0xF3), (Bytes{0xFA}));
    EXPECT_EQ(send(0x00), (Bytes{0xFA}));
    EXPECT_EQ(send(0xEE), (Bytes{0xEE}));
}

TEST_F(Ps2KeyboardTest, ScanCodeSetGetAndSet) {
    EXPECT_EQ(send(0xF0), (Bytes{0xFA}));
    EXPECT_EQ(send(0x00), (Bytes{0xFA, 0x02}));
    EXPECT_EQ(send(0xF0), (Bytes{0xFA}));
    EXPECT_EQ(send(0x01), (Bytes{0xFA}));
    EXPECT_EQ(keyboard.scancode_set(), 1);
    EXPECT_EQ(send(0xF0), (Bytes{0xFA}));
    EXPECT_EQ(send(0x03), (Bytes{0xFE})) << "set 3 is not implemented";
    EXPECT_EQ(keyboard.scancode_set(), 1);
    send(0xFF);
    EXPECT_EQ(keyboard.scancode_set(), 2) << "reset restores set 2";
}

TEST_F(Ps2KeyboardTest, ACommandInPlaceOfAnArgumentRunsAsACommand) {
    EXPECT_EQ(send(0xED), (Bytes{0xFA}));
    EXPECT_EQ(send(0xF2), (Bytes{0xFA, 0xAB, 0x83}));
    EXPECT_EQ(keyboard.leds(), 0);
}

TEST_F(Ps2KeyboardTest, EchoUnknownAndResend) {
    EXPECT_EQ(send(0xEE), (Bytes{0xEE}));
    EXPECT_EQ(send(0xFE), (Bytes{0xEE})) << "resend repeats the last byte sent";
    EXPECT_EQ(send(0x42), (Bytes{0xFE}));
    EXPECT_EQ(send(0xFB), (Bytes{0xFE})) << "set 3 key types";
}

TEST_F(Ps2KeyboardTest, CtrlAltDelInSet2AndSet1) {
    ASSERT_EQ(keyboard.press_ctrl_alt_del(Translation::Off), Ps2Keyboard::KeyResult::Queued);
    EXPECT_EQ(drain(), (Bytes{0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14}));
    ASSERT_EQ(keyboard.press_ctrl_alt_del(Translation::On), Ps2Keyboard::KeyResult::Queued);
    EXPECT_EQ(drain(), (Bytes{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));
    // Set 1 chosen by the guest, without translation.
    send(0xF0);
    send(0x01);
    ASSERT_EQ(keyboard.press_ctrl_alt_del(Translation::Off), Ps2Keyboard::KeyResult::Queued);
    EXPECT_EQ(drain(), (Bytes{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));
}

TEST_F(Ps2KeyboardTest, NoKeysWhileScanningIsDisabled) {
    send(0xF5);
    EXPECT_EQ(keyboard.press_ctrl_alt_del(Translation::On),
              Ps2Keyboard::KeyResult::ScanningDisabled);
    EXPECT_FALSE(keyboard.has_output());
}

TEST_F(Ps2KeyboardTest, QueueIsBoundedAndSequencesAreAllOrNothing) {
    EXPECT_EQ(keyboard.press_ctrl_alt_del(Translation::Off), Ps2Keyboard::KeyResult::Queued);
    EXPECT_EQ(keyboard.queued(), 11u);
    EXPECT_EQ(keyboard.press_ctrl_alt_del(Translation::Off), Ps2Keyboard::KeyResult::QueueFull);
    EXPECT_EQ(keyboard.queued(), 11u);
    keyboard.pop_output();
    keyboard.pop_output();
    keyboard.pop_output();
    keyboard.pop_output();
    EXPECT_EQ(keyboard.press_ctrl_alt_del(Translation::On), Ps2Keyboard::KeyResult::Queued);
    EXPECT_EQ(keyboard.queued(), Ps2Keyboard::k_queue_capacity);
    EXPECT_EQ(keyboard.press_ctrl_alt_del(Translation::On), Ps2Keyboard::KeyResult::QueueFull);
    // The ring wraps around correctly: the rest of the first sequence, then the second.
    EXPECT_EQ(drain(), (Bytes{0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14, 0x1D, 0x38, 0xE0, 0x53,
                              0xE0, 0xD3, 0xB8, 0x9D}));
}

TEST_F(Ps2KeyboardTest, CommandsDropUnsentKeysButEchoDoesNot) {
    keyboard.press_ctrl_alt_del(Translation::On);
    EXPECT_EQ(send(0xEE).size(), 9u) << "eight keys, then the echo";
    keyboard.press_ctrl_alt_del(Translation::On);
    EXPECT_EQ(send(0xF4), (Bytes{0xFA})) << "the ACK is the next byte libps2 sees";
}

}  // namespace
}  // namespace corral::vmm
