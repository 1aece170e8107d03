#include "vmm/control/balloon_answer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "vmm/devices/virtio/balloon/balloon_device.h"

namespace corral::vmm {
namespace {

constexpr uint64_t k_mib = 1024 * 1024;

TEST(BalloonAnswer, WithoutABalloonItSaysSo) {
    auto answer = nlohmann::json::parse(balloon_answer(nullptr, 256 * k_mib, std::nullopt));
    EXPECT_EQ(answer["ok"], false);
    EXPECT_NE(answer["error"].get<std::string>().find("no memory balloon"), std::string::npos);
}

TEST(BalloonAnswer, SetsTheTargetAsPagesAndReportsItInBytes) {
    std::shared_ptr<EventLoop> loop = EventLoop::start("balloon-answer").value();
    virtio::BalloonDevice balloon(loop, std::chrono::milliseconds(0));
    auto answer = nlohmann::json::parse(balloon_answer(&balloon, 256 * k_mib, 128 * k_mib));
    EXPECT_EQ(answer["ok"], true);
    EXPECT_EQ(balloon.status().target_pages, 128 * k_mib / 4096);
    EXPECT_EQ(answer["target_bytes"], 128 * k_mib);
    EXPECT_EQ(answer["actual_bytes"], 256 * k_mib) << "the driver has not inflated anything yet";
    EXPECT_TRUE(answer["guest_free_bytes"].is_null());

    for (uint64_t bad : {uint64_t{0}, 256 * k_mib + 1}) {
        auto refused = nlohmann::json::parse(balloon_answer(&balloon, 256 * k_mib, bad));
        EXPECT_EQ(refused["ok"], false) << bad;
        EXPECT_EQ(refused["error"], "balloon's \"target_bytes\" must be from 1 to 268435456 (the VM's memory)");
    }
    EXPECT_EQ(balloon.status().target_pages, 128 * k_mib / 4096) << "a refused target changes nothing";
    auto deflated = nlohmann::json::parse(balloon_answer(&balloon, 256 * k_mib, 256 * k_mib));
    EXPECT_EQ(deflated["target_bytes"], 256 * k_mib);
    EXPECT_EQ(balloon.status().target_pages, 0u);
}

}  // namespace
}  // namespace corral::vmm
