#include "daemon/http/tls_context.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class TlsContextTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-tls-test-XXXXXX";
        m_dir = ::mkdtemp(pattern);
    }
    void TearDown() override { fs::remove_all(m_dir); }
    fs::path m_dir;
};

unsigned mode_of(const fs::path& path) {
    struct stat info {};
    ::stat(path.c_str(), &info);
    return info.st_mode & 07777;
}

TEST_F(TlsContextTest, SelfSignedIsMadeOnceWithAPrivateKeyAndReused) {
    auto first = TlsContext::self_signed(m_dir / "tls", "host1");
    ASSERT_TRUE(first) << first.error().describe();
    EXPECT_THAT((*first)->fingerprint(), MatchesRegex("([0-9A-F]{2}:){31}[0-9A-F]{2}"));
    EXPECT_EQ(mode_of(m_dir / "tls/server.key"), 0600u);
    EXPECT_EQ(mode_of(m_dir / "tls"), 0700u);
    EXPECT_EQ((*first)->cert_path(), m_dir / "tls/server.crt");

    auto second = TlsContext::self_signed(m_dir / "tls", "host1");
    ASSERT_TRUE(second) << second.error().describe();
    EXPECT_EQ((*second)->fingerprint(), (*first)->fingerprint()) << "a restart must keep the certificate";

    // The files are a usable pair for --tls-cert/--tls-key too.
    auto loaded = TlsContext::from_files(m_dir / "tls/server.crt", m_dir / "tls/server.key");
    ASSERT_TRUE(loaded) << loaded.error().describe();
    EXPECT_EQ((*loaded)->fingerprint(), (*first)->fingerprint());
}

TEST_F(TlsContextTest, ACertificateWithoutItsKeyIsAnErrorAndNothingIsOverwritten) {
    ASSERT_TRUE(TlsContext::self_signed(m_dir / "tls", "host1"));
    fs::remove(m_dir / "tls/server.key");
    const auto before = fs::last_write_time(m_dir / "tls/server.crt");
    auto again = TlsContext::self_signed(m_dir / "tls", "host1");
    ASSERT_FALSE(again);
    EXPECT_THAT(again.error().message(), HasSubstr("server.key does not"));
    EXPECT_EQ(fs::last_write_time(m_dir / "tls/server.crt"), before);
}

TEST_F(TlsContextTest, FilesThatAreMissingWrongOrMismatchedNameTheFlag) {
    auto missing = TlsContext::from_files(m_dir / "nope.crt", m_dir / "nope.key");
    ASSERT_FALSE(missing);
    EXPECT_THAT(missing.error().message(), HasSubstr("--tls-cert " + (m_dir / "nope.crt").string() + ": cannot read it"));

    std::ofstream(m_dir / "junk.pem") << "not a certificate\n";
    ASSERT_TRUE(TlsContext::self_signed(m_dir / "a", "a"));
    auto junk_cert = TlsContext::from_files(m_dir / "junk.pem", m_dir / "a/server.key");
    ASSERT_FALSE(junk_cert);
    EXPECT_THAT(junk_cert.error().message(), HasSubstr("--tls-cert " + (m_dir / "junk.pem").string() + ": not a PEM certificate"));

    auto no_key = TlsContext::from_files(m_dir / "a/server.crt", m_dir / "nokey.pem");
    ASSERT_FALSE(no_key);
    EXPECT_THAT(no_key.error().message(), HasSubstr("--tls-key"));

    ASSERT_TRUE(TlsContext::self_signed(m_dir / "b", "b"));
    auto mismatched = TlsContext::from_files(m_dir / "a/server.crt", m_dir / "b/server.key");
    ASSERT_FALSE(mismatched);
    EXPECT_THAT(mismatched.error().message(), HasSubstr("--tls-key"));
    EXPECT_THAT(mismatched.error().message(), HasSubstr("--tls-cert"));
}

}  // namespace
}  // namespace corral::daemon
