#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "engine/engine.h"

namespace corral::engine::testing {

/// A temporary directory removed with everything in it at the end of the test.
class TestDir {
public:
    TestDir() {
        char pattern[] = "/tmp/corral-engine-test-XXXXXX";
        m_path = ::mkdtemp(pattern);
    }
    ~TestDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    std::filesystem::path path(const std::string& name) const { return m_path / name; }
    const std::filesystem::path& dir() const { return m_path; }

private:
    std::filesystem::path m_path;
};

/// The engine binaries of this build tree, found from the test binary's own location.
inline EnginePaths build_tree_paths() {
    return EnginePaths::discover(std::filesystem::read_symlink("/proc/self/exe"));
}

}  // namespace corral::engine::testing
