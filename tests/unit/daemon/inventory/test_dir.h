#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace corral::inventory::testing {

/// A temporary directory removed with everything in it at the end of the test.
class TestDir {
public:
    TestDir() {
        char pattern[] = "/tmp/corral-inventory-test-XXXXXX";
        m_path = ::mkdtemp(pattern);
    }
    ~TestDir() { std::filesystem::remove_all(m_path); }
    std::string path(const std::string& name) const { return m_path + "/" + name; }
    const std::string& dir() const { return m_path; }

private:
    std::string m_path;
};

}  // namespace corral::inventory::testing
