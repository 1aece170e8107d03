// Seeds for kernel_image_fuzz: the synthetic bzImage and ELF kernels of the loader's unit tests.
#include "../../unit/vmm/boot_test_kernels.h"
#include "../smoke_driver.h"

namespace corral::fuzz {

std::vector<Input> make_seeds() {
    using namespace corral::vmm::testing;
    BzImageSpec old_protocol;
    old_protocol.version = 0x020c;
    old_protocol.setup_sects = 0;
    return {make_bzimage(), make_bzimage(old_protocol), make_test_guest_elf(),
            make_elf({{0x100000, 0x100000, 0x200, 0x200}}, 0x100000)};
}

}  // namespace corral::fuzz
