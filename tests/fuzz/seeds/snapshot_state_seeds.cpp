// Seeds for snapshot_state_fuzz: valid state files (one and two vCPUs, without and with a
// virtio device); the target fixes up the checksum of each mutation too.
#include "../smoke_driver.h"
#include "vmm/snapshot/snapshot_file.h"

namespace corral::fuzz {

std::vector<Input> make_seeds() {
    using namespace corral::vmm;
    std::vector<Input> seeds;
    for (uint32_t cpus : {1u, 2u}) {
        snapshot::SnapshotState state;
        state.config.kernel_path = "/boot/vmlinuz";
        state.config.cpus = cpus;
        state.config.memory_bytes = 64ull << 20;
        state.memory_bytes = state.config.memory_bytes;
        state.vcpus.resize(cpus);
        for (uint32_t i = 0; i < cpus; ++i) state.vcpus[i].id = i;
        state.vm.pic_slave.chip_id = 1;
        state.vm.ioapic.chip_id = 2;
        if (cpus == 2) {
            virtio::VirtioPciState device;
            device.queues.resize(1);
            device.msix.entries.resize(2);
            device.msix.pending.resize(2);
            state.virtio.push_back(device);
        }
        auto bytes = snapshot::encode_state_file(state);
        seeds.emplace_back(bytes.begin(), bytes.end());
    }
    return seeds;
}

}  // namespace corral::fuzz
