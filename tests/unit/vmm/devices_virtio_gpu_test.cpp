#include "vmm/devices/virtio/gpu/gpu_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <cstring>
#include <initializer_list>

#include "base/event_fd.h"
#include "vmm/devices/virtio/gpu/gpu_protocol.h"
#include "virtio_test_driver.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingInterrupt;
using testing::TestRing;
using namespace gpu;

constexpr uint64_t k_request = 0x40000;
constexpr uint64_t k_response = 0x50000;
constexpr uint64_t k_backing = 0x100000;

/// A command as the driver lays it out: the header (type, flags, fence id) then le32 fields.
std::vector<uint8_t> command(uint32_t type, std::initializer_list<uint32_t> fields, uint32_t flags = 0,
                             uint64_t fence = 0) {
    std::vector<uint8_t> bytes(k_header_size, 0);
    std::memcpy(bytes.data(), &type, 4);
    std::memcpy(bytes.data() + 4, &flags, 4);
    std::memcpy(bytes.data() + 8, &fence, 8);
    for (uint32_t field : fields) {
        bytes.resize(bytes.size() + 4);
        std::memcpy(bytes.data() + bytes.size() - 4, &field, 4);
    }
    return bytes;
}

class GpuDeviceTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::vector<std::optional<ActiveQueue>> queues(2);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, ring.layout(), {}).value(), notify.fd()});
        ASSERT_TRUE(device.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt}));
    }
    void TearDown() override { device.reset(); }

    /// Sends `request` with a response buffer of `response_size` bytes; returns the answer's type
    /// (0 when the device wrote nothing).
    uint32_t send(const std::vector<uint8_t>& request, uint32_t response_size = 512) {
        memory.write(k_request, request).value();
        memory.write(k_response, std::vector<uint8_t>(512, 0)).value();
        ring.descriptor(0, k_request, static_cast<uint32_t>(request.size()), k_desc_f_next, 1);
        ring.descriptor(1, k_response, response_size, k_desc_f_write);
        uint16_t before = ring.used_idx();
        ring.publish(0);
        device.process_control();
        EXPECT_EQ(ring.used_idx(), static_cast<uint16_t>(before + 1));
        last_written = ring.used_element(before).second;
        return memory.read_object<uint32_t>(k_response).value();
    }
    uint32_t create(uint32_t id, uint32_t width, uint32_t height, uint32_t format = k_format_b8g8r8x8) {
        return send(command(k_cmd_resource_create_2d, {id, format, width, height}));
    }
    /// Backing for resource `id`: `entries` (guest address, length) pairs.
    uint32_t attach(uint32_t id, std::initializer_list<std::pair<uint64_t, uint32_t>> entries) {
        auto bytes = command(k_cmd_resource_attach_backing, {id, static_cast<uint32_t>(entries.size())});
        for (auto [address, length] : entries) {
            bytes.resize(bytes.size() + 16, 0);
            std::memcpy(bytes.data() + bytes.size() - 16, &address, 8);
            std::memcpy(bytes.data() + bytes.size() - 8, &length, 4);
        }
        return send(bytes);
    }
    uint32_t transfer(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t offset) {
        return send(command(k_cmd_transfer_to_host_2d, {x, y, w, h, static_cast<uint32_t>(offset),
                                                        static_cast<uint32_t>(offset >> 32), id, 0}));
    }
    uint32_t scanout(uint32_t scanout_id, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        return send(command(k_cmd_set_scanout, {x, y, w, h, scanout_id, id}));
    }
    uint32_t flush(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        return send(command(k_cmd_resource_flush, {x, y, w, h, id, 0}));
    }
    /// Fills the guest's copy of a width-pixel-wide image: pixel (x, y) = bytes (x, y, id, 0xEE).
    void paint(uint32_t width, uint32_t height, uint8_t id) {
        std::vector<uint8_t> pixels(size_t{width} * height * 4);
        for (uint32_t y = 0; y < height; ++y)
            for (uint32_t x = 0; x < width; ++x) {
                uint8_t* p = pixels.data() + (size_t{y} * width + x) * 4;
                p[0] = static_cast<uint8_t>(x);
                p[1] = static_cast<uint8_t>(y);
                p[2] = id;
                p[3] = 0xEE;
            }
        memory.write(k_backing, pixels).value();
    }
    std::vector<uint8_t> screen(display::Rect rect) {
        std::vector<uint8_t> out;
        framebuffer->read(rect, out);
        return out;
    }

    GuestMemory memory = GuestMemory::create(4 << 20).value();
    TestRing ring{memory, 8};
    EventFd notify = EventFd::create(EFD_NONBLOCK).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("gpu-test").value();
    RecordingInterrupt interrupt;
    std::shared_ptr<display::Framebuffer> framebuffer = std::make_shared<display::Framebuffer>(1024, 768);
    GpuDevice device{loop, framebuffer};
    uint32_t last_written = 0;
};

TEST_F(GpuDeviceTest, ConfigHasOneScanoutAndDisplayInfoThePreferredMode) {
    std::array<uint8_t, 16> config{};
    device.read_config(0, config);
    EXPECT_EQ(config[8], 1) << "num_scanouts";
    EXPECT_EQ(device.device_features(), 0u);
    EXPECT_EQ(send(command(k_cmd_get_display_info, {})), k_resp_ok_display_info);
    EXPECT_EQ(last_written, k_display_info_size);
    EXPECT_EQ(memory.read_object<uint32_t>(k_response + 24 + 8).value(), 1024u);
    EXPECT_EQ(memory.read_object<uint32_t>(k_response + 24 + 12).value(), 768u);
    EXPECT_EQ(memory.read_object<uint32_t>(k_response + 24 + 16).value(), 1u) << "enabled";
    EXPECT_EQ(memory.read_object<uint32_t>(k_response + 24 + 24 + 16).value(), 0u) << "scanout 1 is off";
}

TEST_F(GpuDeviceTest, TransferredPixelsAppearOnTheScreenAtScanoutAndFlush) {
    ASSERT_EQ(create(7, 640, 480), k_resp_ok_nodata);
    // Two backing entries that split a row: the device must join them.
    ASSERT_EQ(attach(7, {{k_backing, 1000}, {k_backing + 1000, 640 * 480 * 4 - 1000}}), k_resp_ok_nodata);
    paint(640, 480, 1);
    ASSERT_EQ(transfer(7, 0, 0, 640, 480, 0), k_resp_ok_nodata);
    uint64_t generation = framebuffer->generation();
    ASSERT_EQ(scanout(0, 7, 0, 0, 640, 480), k_resp_ok_nodata);
    EXPECT_EQ(framebuffer->width(), 640u);
    EXPECT_EQ(framebuffer->height(), 480u);
    EXPECT_NE(framebuffer->generation(), generation) << "a new mode is a resize";
    EXPECT_EQ(screen({3, 5, 1, 1}), (std::vector<uint8_t>{3, 5, 1, 0xEE}));

    // A damaged rectangle: transferred with the offset of its top-left pixel, then flushed.
    paint(640, 480, 2);
    uint64_t offset = (100ull * 640 + 50) * 4;
    ASSERT_EQ(transfer(7, 50, 100, 10, 2, offset), k_resp_ok_nodata);
    EXPECT_EQ(screen({50, 100, 1, 1}), (std::vector<uint8_t>{50, 100, 1, 0xEE})) << "not flushed yet";
    ASSERT_EQ(flush(7, 50, 100, 10, 2), k_resp_ok_nodata);
    EXPECT_EQ(screen({50, 100, 1, 1}), (std::vector<uint8_t>{50, 100, 2, 0xEE}));
    EXPECT_EQ(screen({59, 101, 1, 1}), (std::vector<uint8_t>{59, 101, 2, 0xEE}));
    EXPECT_EQ(screen({60, 101, 1, 1}), (std::vector<uint8_t>{60, 101, 1, 0xEE})) << "outside the rect";
}

TEST_F(GpuDeviceTest, OtherByteOrdersAreConvertedToTheScreens) {
    ASSERT_EQ(create(1, 640, 480, k_format_x8r8g8b8), k_resp_ok_nodata);
    ASSERT_EQ(attach(1, {{k_backing, 640 * 480 * 4}}), k_resp_ok_nodata);
    memory.write(k_backing, std::vector<uint8_t>{0, 0x11, 0x22, 0x33}).value();  // X, R, G, B
    ASSERT_EQ(transfer(1, 0, 0, 1, 1, 0), k_resp_ok_nodata);
    ASSERT_EQ(scanout(0, 1, 0, 0, 640, 480), k_resp_ok_nodata);
    EXPECT_EQ(screen({0, 0, 1, 1}), (std::vector<uint8_t>{0x33, 0x22, 0x11, 0}));  // B, G, R, X
}

TEST_F(GpuDeviceTest, FencedCommandsAnswerWithTheirFence) {
    send(command(k_cmd_get_display_info, {}, k_flag_fence, 0x1122334455667788ull));
    EXPECT_EQ(memory.read_object<uint32_t>(k_response + 4).value(), k_flag_fence);
    EXPECT_EQ(memory.read_object<uint64_t>(k_response + 8).value(), 0x1122334455667788ull);
}

TEST_F(GpuDeviceTest, MalformedCommandsGetErrorAnswers) {
    EXPECT_EQ(send({1, 1, 0, 0}), k_resp_err_unspec) << "shorter than a header";
    EXPECT_EQ(send(command(0x0999, {})), k_resp_err_unspec) << "unknown type";
    EXPECT_EQ(send(command(0x0200, {})), k_resp_err_unspec) << "3D is not offered";
    EXPECT_EQ(send(command(k_cmd_resource_create_2d, {1, 2})), k_resp_err_unspec) << "truncated body";
    EXPECT_EQ(send(command(k_cmd_set_scanout, {0, 0, 1})), k_resp_err_unspec);
    EXPECT_EQ(send(command(k_cmd_transfer_to_host_2d, {0, 0, 1, 1, 0})), k_resp_err_unspec);
    EXPECT_GE(device.counters().errors, 6u);
}

TEST_F(GpuDeviceTest, ResourceCreationIsChecked) {
    EXPECT_EQ(create(0, 64, 64), k_resp_err_invalid_resource_id) << "id 0";
    ASSERT_EQ(create(1, 64, 64), k_resp_ok_nodata);
    EXPECT_EQ(create(1, 64, 64), k_resp_err_invalid_resource_id) << "in use";
    EXPECT_EQ(create(2, 64, 64, 99), k_resp_err_invalid_parameter) << "unknown format";
    EXPECT_EQ(create(2, 0, 64), k_resp_err_invalid_parameter) << "empty";
    EXPECT_EQ(create(2, 64, 0xFFFFFFFF), k_resp_err_invalid_parameter) << "huge";
    EXPECT_EQ(create(2, 16384, 16384), k_resp_err_out_of_memory) << "1 GiB is over the VM's budget";
    EXPECT_EQ(create(2, 8192, 4096), k_resp_ok_nodata);  // 128 MiB
    EXPECT_EQ(create(3, 8192, 4096), k_resp_err_out_of_memory) << "the total is bounded too";
    EXPECT_LE(device.host_bytes(), gpu::GpuCommands::k_max_host_bytes);
    EXPECT_EQ(send(command(k_cmd_resource_unref, {2, 0})), k_resp_ok_nodata);
    EXPECT_EQ(create(3, 8192, 4096), k_resp_ok_nodata) << "unref gave the memory back";
    EXPECT_EQ(send(command(k_cmd_resource_unref, {2, 0})), k_resp_err_invalid_resource_id);
}

TEST_F(GpuDeviceTest, RectanglesAreCheckedAgainstTheResourceWithoutOverflow) {
    ASSERT_EQ(create(1, 640, 480), k_resp_ok_nodata);
    ASSERT_EQ(attach(1, {{k_backing, 640 * 480 * 4}}), k_resp_ok_nodata);
    EXPECT_EQ(scanout(1, 1, 0, 0, 640, 480), k_resp_err_invalid_scanout_id);
    EXPECT_EQ(scanout(0, 9, 0, 0, 640, 480), k_resp_err_invalid_resource_id);
    EXPECT_EQ(scanout(0, 1, 0, 0, 641, 480), k_resp_err_invalid_parameter);
    EXPECT_EQ(scanout(0, 1, 0xFFFFFFF0, 0, 0x20, 480), k_resp_err_invalid_parameter) << "x + width wraps";
    EXPECT_EQ(scanout(0, 1, 0, 0, 0, 0), k_resp_err_invalid_parameter);
    EXPECT_EQ(flush(1, 0, 0xFFFFFFFF, 1, 2), k_resp_err_invalid_parameter);
    EXPECT_EQ(flush(9, 0, 0, 1, 1), k_resp_err_invalid_resource_id);
    EXPECT_EQ(transfer(1, 600, 0, 41, 1, 0), k_resp_err_invalid_parameter);
    EXPECT_EQ(transfer(1, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0), k_resp_err_invalid_parameter);
    EXPECT_EQ(transfer(9, 0, 0, 1, 1, 0), k_resp_err_invalid_resource_id);
    EXPECT_EQ(framebuffer->width(), 1024u) << "nothing was shown";
}

TEST_F(GpuDeviceTest, TransfersStayInsideTheBacking) {
    ASSERT_EQ(create(1, 640, 480), k_resp_ok_nodata);
    EXPECT_EQ(transfer(1, 0, 0, 1, 1, 0), k_resp_err_unspec) << "no backing";
    ASSERT_EQ(attach(1, {{k_backing, 4096}}), k_resp_ok_nodata);  // one page for a 1.2 MB image
    EXPECT_EQ(transfer(1, 0, 0, 640, 1, 0), k_resp_ok_nodata) << "the first row fits";
    EXPECT_EQ(transfer(1, 0, 0, 640, 2, 0), k_resp_err_invalid_parameter) << "the second does not";
    EXPECT_EQ(transfer(1, 0, 0, 1, 1, 4093), k_resp_err_invalid_parameter);
    EXPECT_EQ(transfer(1, 0, 0, 1, 1, ~0ull), k_resp_err_invalid_parameter) << "offset near 2^64";
    EXPECT_EQ(transfer(1, 0, 0, 1, 1, ~0ull - 2), k_resp_err_invalid_parameter);
    EXPECT_EQ(transfer(1, 0, 0, 1, 1, 4092), k_resp_ok_nodata);
}

TEST_F(GpuDeviceTest, BackingEntriesMustBeGuestRam) {
    ASSERT_EQ(create(1, 64, 64), k_resp_ok_nodata);
    EXPECT_EQ(attach(1, {{4 << 20, 4096}}), k_resp_err_invalid_parameter) << "beyond RAM";
    EXPECT_EQ(attach(1, {{(4 << 20) - 4096, 8192}}), k_resp_err_invalid_parameter) << "runs past RAM";
    EXPECT_EQ(attach(1, {{k_backing, 4096}, {~0ull - 10, 100}}), k_resp_err_invalid_parameter) << "wraps";
    EXPECT_EQ(attach(9, {{k_backing, 4096}}), k_resp_err_invalid_resource_id);
    EXPECT_EQ(attach(1, {}), k_resp_err_invalid_parameter) << "no entries";
    EXPECT_EQ(send(command(k_cmd_resource_attach_backing, {1, 100000})), k_resp_err_invalid_parameter)
        << "too many entries";
    EXPECT_EQ(send(command(k_cmd_resource_attach_backing, {1, 3, 0, 0, 4096, 0})), k_resp_err_unspec)
        << "fewer entries than announced";
    EXPECT_EQ(send(command(k_cmd_resource_detach_backing, {1, 0})), k_resp_err_unspec) << "none attached";
    ASSERT_EQ(attach(1, {{k_backing, 64 * 64 * 4}}), k_resp_ok_nodata);
    EXPECT_EQ(attach(1, {{k_backing, 64 * 64 * 4}}), k_resp_err_unspec) << "already attached";
    EXPECT_EQ(send(command(k_cmd_resource_detach_backing, {1, 0})), k_resp_ok_nodata);
    EXPECT_EQ(transfer(1, 0, 0, 1, 1, 0), k_resp_err_unspec) << "detached";
}

TEST_F(GpuDeviceTest, UnrefOfTheScannedOutResourceTurnsTheScanoutOff) {
    ASSERT_EQ(create(1, 640, 480), k_resp_ok_nodata);
    ASSERT_EQ(attach(1, {{k_backing, 640 * 480 * 4}}), k_resp_ok_nodata);
    ASSERT_EQ(scanout(0, 1, 0, 0, 640, 480), k_resp_ok_nodata);
    ASSERT_EQ(send(command(k_cmd_resource_unref, {1, 0})), k_resp_ok_nodata);
    ASSERT_EQ(create(1, 64, 64), k_resp_ok_nodata);
    EXPECT_EQ(flush(1, 0, 0, 64, 64), k_resp_ok_nodata) << "not shown: the new resource is not scanned out";
    EXPECT_EQ(framebuffer->width(), 640u);
}

TEST_F(GpuDeviceTest, AnswerThatDoesNotFitIsNotWritten) {
    EXPECT_EQ(send(command(k_cmd_get_display_info, {}), 100), 0u);
    EXPECT_EQ(last_written, 0u);
    EXPECT_GE(device.counters().errors, 1u);
}

TEST_F(GpuDeviceTest, ResetForgetsTheResources) {
    ASSERT_EQ(create(1, 64, 64), k_resp_ok_nodata);
    EXPECT_GT(device.host_bytes(), 0u);
    device.reset();
    EXPECT_EQ(device.host_bytes(), 0u);
}

}  // namespace
}  // namespace corral::vmm::virtio
