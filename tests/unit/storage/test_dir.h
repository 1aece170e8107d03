#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace corral::storage::testing {

/// A temporary directory removed with everything in it at the end of the test.
class TestDir {
public:
    TestDir() {
        char pattern[] = "/tmp/corral-test-XXXXXX";
        m_path = ::mkdtemp(pattern);
    }
    ~TestDir() { std::filesystem::remove_all(m_path); }
    std::string path(const std::string& name) const { return m_path + "/" + name; }
    const std::string& dir() const { return m_path; }

private:
    std::string m_path;
};

}  // namespace corral::storage::testing
