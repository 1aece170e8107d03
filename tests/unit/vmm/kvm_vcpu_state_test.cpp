// vCPU and VM state through KVM: a tiny 64-bit guest counts in ECX and in memory, exiting to
// us on every step; its state is saved, encoded, decoded and restored into a NEW VM with a copy
// of its memory, where the count goes on from where it was. Needs /dev/kvm (skips without).
#include "vmm/kvm/vcpu_state.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/lapic.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/long_mode.h"
#include "vmm/arch/x86_64/msrs.h"
#include "vmm/kvm/system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/snapshot/cpu_compat.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::kvm {
namespace {

constexpr uint64_t k_code = 0x10000;
constexpr uint64_t k_counter = 0x2000;
constexpr uint16_t k_step_port = 0x80;
// loop: inc ecx; mov [0x2000], ecx; out 0x80, al; jmp loop
constexpr std::array<uint8_t, 13> k_counting_guest = {0xFF, 0xC1,                                // inc ecx
                                                      0x89, 0x0C, 0x25, 0x00, 0x20, 0x00, 0x00,  // mov [0x2000], ecx
                                                      0xE6, 0x80,                                // out 0x80, al
                                                      0xEB, 0xF3};                               // jmp -13

struct TestVm {
    Vm vm;
    GuestMemory memory;
    Vcpu vcpu;
};

Result<TestVm> make_vm(const System& system, const GuestMemory* copy_from) {
    auto vm = TRY(system.create_vm());
    TRY_VOID(vm.set_tss_address(x86::k_kvm_tss_address));
    TRY_VOID(vm.set_identity_map_address(x86::k_kvm_identity_map_address));
    TRY_VOID(vm.create_irqchip());
    TRY_VOID(vm.create_pit2());
    auto memory = TRY(GuestMemory::create(2 * x86::MiB));
    if (copy_from)
        std::memcpy(memory.host_pointer(0, 2 * x86::MiB), copy_from->host_pointer(0, 2 * x86::MiB), 2 * x86::MiB);
    uint32_t slot = 0;
    for (const auto& region : memory.regions())
        TRY_VOID(vm.set_user_memory_region(slot++, region.guest_address, region.size, region.host));
    auto vcpu = TRY(vm.create_vcpu(0));
    return TestVm{std::move(vm), std::move(memory), std::move(vcpu)};
}

Result<void> boot_counting_guest(const System& system, TestVm& test) {
    const GuestMemory& memory = test.memory;
    TRY_VOID(x86::write_boot_gdt(memory));
    TRY_VOID(x86::write_identity_page_tables(memory));
    std::memcpy(memory.host_pointer(k_code, k_counting_guest.size()), k_counting_guest.data(), k_counting_guest.size());
    auto supported = TRY(system.supported_cpuid());
    TRY_VOID(test.vcpu.set_cpuid(x86::shape_cpuid(supported, 0, 1)));
    TRY_VOID(test.vcpu.set_msrs(x86::boot_msrs()));
    auto lapic = TRY(test.vcpu.lapic());
    x86::set_virtual_wire_mode(lapic);
    TRY_VOID(test.vcpu.set_lapic(lapic));
    TRY_VOID(test.vcpu.set_fpu(x86::boot_fpu()));
    TRY_VOID(test.vcpu.set_regs(x86::long_mode_regs(k_code, 0)));
    auto sregs = TRY(test.vcpu.sregs());
    TRY_VOID(test.vcpu.set_sregs(x86::long_mode_sregs(sregs)));
    return {};
}

/// Runs until the guest has made `steps` more steps (each an OUT to port 0x80).
::testing::AssertionResult run_steps(const Vcpu& vcpu, int steps) {
    for (int done = 0; done < steps;) {
        auto result = vcpu.run();
        if (!result) {
            if (result.error().errno_value() == EINTR) continue;
            return ::testing::AssertionFailure() << result.error().describe();
        }
        kvm_run* run = vcpu.run_area();
        if (run->exit_reason != KVM_EXIT_IO || run->io.port != k_step_port)
            return ::testing::AssertionFailure() << "unexpected exit " << run->exit_reason;
        ++done;
    }
    return ::testing::AssertionSuccess();
}

uint32_t counter(const GuestMemory& memory) { return memory.read_object<uint32_t>(k_counter).value(); }

template <typename State>
std::vector<uint8_t> encode(const State& state) {
    snapshot::StateWriter writer;
    state.encode(writer);
    return writer.take();
}

class KvmStateTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto opened = System::open();
        if (!opened) GTEST_SKIP() << "needs /dev/kvm: " << opened.error().describe();
        system.emplace(std::move(*opened));
    }
    std::optional<System> system;
};

TEST_F(KvmStateTest, CountingGuestContinuesInANewVm) {
    auto original = make_vm(*system, nullptr);
    ASSERT_TRUE(original) << original.error().describe();
    ASSERT_TRUE(boot_counting_guest(*system, *original)) << "boot";
    ASSERT_TRUE(run_steps(original->vcpu, 40));
    ASSERT_EQ(counter(original->memory), 40u);

    // Save (finishing the OUT the vCPU stopped in first), encode, decode.
    ASSERT_TRUE(original->vcpu.complete_pending_io());
    auto msrs = saveable_msrs(*system, original->vcpu);
    ASSERT_TRUE(msrs) << msrs.error().describe();
    EXPECT_FALSE(msrs->empty());
    auto vcpu_state = save_vcpu(*system, original->vcpu, *msrs);
    ASSERT_TRUE(vcpu_state) << vcpu_state.error().describe();
    auto vm_state = save_vm(original->vm);
    ASSERT_TRUE(vm_state) << vm_state.error().describe();
    EXPECT_EQ(static_cast<uint32_t>(vcpu_state->regs.rcx), 40u);
    EXPECT_FALSE(vcpu_state->cpuid.empty()) << "the CPUID the guest saw";
    auto vcpu_bytes = encode(*vcpu_state);
    auto vm_bytes = encode(*vm_state);
    auto vcpu_decoded = snapshot::decode_all<VcpuState>(vcpu_bytes, "vcpu", [](auto& r) { return VcpuState::decode(r); });
    auto vm_decoded = snapshot::decode_all<VmState>(vm_bytes, "vm", [](auto& r) { return VmState::decode(r); });
    ASSERT_TRUE(vcpu_decoded && vm_decoded);
    EXPECT_EQ(encode(*vcpu_decoded), vcpu_bytes);

    // A new VM with a copy of the memory; the old one is gone before the new one runs.
    auto restored = make_vm(*system, &original->memory);
    ASSERT_TRUE(restored) << restored.error().describe();
    { auto gone = std::move(*original); }
    ASSERT_TRUE(restore_vm(restored->vm, *vm_decoded)) << "VM state";
    auto applied = restore_vcpu(*system, restored->vcpu, *vcpu_decoded);
    ASSERT_TRUE(applied) << applied.error().describe();
    auto regs = restored->vcpu.regs().value();
    EXPECT_EQ(regs.rip, vcpu_state->regs.rip);
    EXPECT_EQ(restored->vcpu.given_cpuid().size(), vcpu_state->cpuid.size());

    ASSERT_TRUE(run_steps(restored->vcpu, 25));
    EXPECT_EQ(counter(restored->memory), 65u) << "the count went on from 40";
    EXPECT_EQ(static_cast<uint32_t>(restored->vcpu.regs().value().rcx), 65u);
}

TEST_F(KvmStateTest, TheRestoredClockIsSteppedByTheTimeThatPassedSinceTheSave) {
    auto original = make_vm(*system, nullptr);
    ASSERT_TRUE(original) << original.error().describe();
    auto saved = save_vm(original->vm);
    ASSERT_TRUE(saved) << saved.error().describe();
    EXPECT_NE(saved->clock.flags & KVM_CLOCK_REALTIME, 0u) << "saved with the host's time";
    EXPECT_GT(saved->clock.realtime, 0u);
    // As if the snapshot had been taken a minute ago: the new VM's clock is a minute on.
    constexpr uint64_t k_minute_ns = 60'000'000'000u;
    VmState older = *saved;
    older.clock.realtime -= k_minute_ns;
    auto restored = make_vm(*system, nullptr);
    ASSERT_TRUE(restored) << restored.error().describe();
    ASSERT_TRUE(restore_vm(restored->vm, older));
    auto clock = restored->vm.clock();
    ASSERT_TRUE(clock) << clock.error().describe();
    EXPECT_GE(clock->clock, saved->clock.clock + k_minute_ns);
    EXPECT_LT(clock->clock, saved->clock.clock + 2 * k_minute_ns) << "stepped by the minute, not more";
}

TEST_F(KvmStateTest, TheGuestsCpuidNeedsNothingThisHostLacks) {
    auto test = make_vm(*system, nullptr);
    ASSERT_TRUE(test) << test.error().describe();
    ASSERT_TRUE(boot_counting_guest(*system, *test));
    ASSERT_TRUE(run_steps(test->vcpu, 2));
    auto msrs = saveable_msrs(*system, test->vcpu).value();
    auto saved = save_vcpu(*system, test->vcpu, msrs).value().cpuid;
    auto here = x86::shape_cpuid(system->supported_cpuid().value(), 0, 1);
    auto missing = snapshot::missing_cpu_features(saved, here);
    EXPECT_TRUE(missing.empty()) << missing.size() << " missing, first: " << (missing.empty() ? "" : missing[0]);
    // A guest that saw a feature this host cannot give is refused, with the bit named.
    for (auto& entry : saved)
        if (entry.function == 0x7 && entry.index == 0) entry.ebx |= 1u << 31;
    for (auto& entry : here)
        if (entry.function == 0x7 && entry.index == 0) entry.ebx &= ~(1u << 31);
    missing = snapshot::missing_cpu_features(saved, here);
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_EQ(missing[0], "CPUID 0x7.0 EBX bit 31");
}

TEST_F(KvmStateTest, TruncatedOrForeignStateIsRefused) {
    auto test = make_vm(*system, nullptr);
    ASSERT_TRUE(test) << test.error().describe();
    ASSERT_TRUE(boot_counting_guest(*system, *test));
    auto msrs = saveable_msrs(*system, test->vcpu).value();
    auto bytes = encode(save_vcpu(*system, test->vcpu, msrs).value());
    for (size_t size = 0; size < bytes.size(); size += 97) {
        auto decoded = snapshot::decode_all<VcpuState>(std::span(bytes).first(size), "vcpu",
                                                       [](auto& r) { return VcpuState::decode(r); });
        EXPECT_FALSE(decoded) << size;
    }
    auto state = save_vcpu(*system, test->vcpu, msrs).value();
    state.id = 3;
    auto refused = restore_vcpu(*system, test->vcpu, state);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("vCPU 3"), std::string::npos);
    auto vm_state = save_vm(test->vm).value();
    std::swap(vm_state.pic_master, vm_state.ioapic);
    EXPECT_FALSE(restore_vm(test->vm, vm_state));
}

TEST(RestoredClock, StepsForwardByTheTimeSinceTheSavedHostTimeOnlyWhenItIsSane) {
    kvm_clock_data saved{};
    saved.clock = 5'000'000'000u;
    saved.flags = KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
    saved.realtime = 1'000'000'000'000'000'000u;
    saved.host_tsc = 77;
    constexpr uint64_t k_hour_ns = 3'600'000'000'000u;
    kvm_clock_data stepped = restored_clock(saved, saved.realtime + k_hour_ns);
    EXPECT_EQ(stepped.clock, saved.clock + k_hour_ns);
    EXPECT_EQ(stepped.flags, 0u) << "the step is done; KVM is asked for nothing else (the host TSC is not ours)";

    auto unstepped = [&](kvm_clock_data clock, uint64_t now) {
        kvm_clock_data given = restored_clock(clock, now);
        return given.flags == 0 && given.clock == clock.clock;
    };
    EXPECT_TRUE(unstepped(saved, saved.realtime - 1)) << "saved in the future: no step back";
    EXPECT_TRUE(unstepped(saved, saved.realtime + 11ull * 366 * 24 * k_hour_ns)) << "over ten years";
    kvm_clock_data no_time = saved;
    no_time.flags = 0;
    EXPECT_TRUE(unstepped(no_time, saved.realtime + k_hour_ns)) << "no host time saved";
    kvm_clock_data zero = saved;
    zero.realtime = 0;
    EXPECT_TRUE(unstepped(zero, saved.realtime + k_hour_ns));
}

}  // namespace
}  // namespace corral::vmm::kvm
