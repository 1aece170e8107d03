#pragma once

// The inventory tests use the same temporary directory as the storage tests.
#include "../../storage/test_dir.h"

namespace corral::inventory::testing {

using storage::testing::TestDir;

}  // namespace corral::inventory::testing
