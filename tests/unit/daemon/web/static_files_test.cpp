#include "daemon/web/static_files.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {
namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = fs::temp_directory_path() / ("static-files-test-" + std::to_string(::getpid()));
        fs::create_directories(m_dir / "web/assets");
        write(m_dir / "web/index.html", "<!doctype html>");
        write(m_dir / "web/assets/main-AB12.js", "let x = 1;");
        write(m_dir / "secret.txt", "SECRET");
        fs::create_symlink("../secret.txt", m_dir / "web/out.txt");
    }
    void TearDown() override { fs::remove_all(m_dir); }
    static void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }
    std::string header(const HttpResponse& response, const std::string& name) {
        for (const auto& [key, value] : response.headers)
            if (key == name)
                return value;
        return {};
    }
    fs::path m_dir;
};

TEST_F(StaticFilesTest, ServesIndexAndAssetsWithTheirTypesAndCaching) {
    StaticFiles files(m_dir / "web");
    HttpRequest request;
    auto index = files.serve("", request);
    ASSERT_TRUE(index);
    EXPECT_EQ(index->body, "<!doctype html>");
    EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
    EXPECT_EQ(header(*index, "Cache-Control"), "no-cache");
    auto script = files.serve("assets/main-AB12.js", request);
    ASSERT_TRUE(script);
    EXPECT_EQ(script->content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(header(*script, "Cache-Control"), "public, max-age=31536000, immutable");
    request.headers["if-none-match"] = header(*script, "ETag");
    auto again = files.serve("assets/main-AB12.js", request);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304);
    EXPECT_TRUE(again->body.empty());
}

TEST_F(StaticFilesTest, NothingOutsideTheFolderNoSymlinkNoFolder) {
    StaticFiles files(m_dir / "web");
    HttpRequest request;
    for (const char* path : {"out.txt", "../secret.txt", "assets", "assets/../../secret.txt", "missing.js"}) {
        auto answer = files.serve(path, request);
        ASSERT_FALSE(answer) << path << " was served: " << answer->body;
        EXPECT_EQ(answer.error().status, 404) << path;
    }
}

TEST_F(StaticFilesTest, AFolderThatIsNotThereSaysHowToBuildTheUi) {
    StaticFiles files(m_dir / "nothing");
    EXPECT_FALSE(files.available());
    auto answer = files.serve("", HttpRequest{});
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 404);
    EXPECT_NE(answer->body.find("not built"), std::string::npos);
}

TEST_F(StaticFilesTest, AClientThatAcceptsGzipGetsThePrecompressedTwin) {
    write(m_dir / "web/assets/main-AB12.js.gz", "GZIP-BYTES");
    StaticFiles files(m_dir / "web");
    HttpRequest request;
    request.headers["accept-encoding"] = "gzip, deflate, br";
    auto packed = files.serve("assets/main-AB12.js", request);
    ASSERT_TRUE(packed);
    EXPECT_EQ(packed->body, "GZIP-BYTES");
    EXPECT_EQ(header(*packed, "Content-Encoding"), "gzip");
    EXPECT_EQ(packed->content_type, "text/javascript; charset=utf-8");  // the file's type, not the .gz's
    EXPECT_EQ(header(*packed, "Vary"), "Accept-Encoding");
    // Without gzip in Accept-Encoding (or refused with q=0): the file as it is, under another ETag.
    for (const char* accept : {"", "br", "gzip;q=0", "identity"}) {
        request.headers["accept-encoding"] = accept;
        auto plain = files.serve("assets/main-AB12.js", request);
        ASSERT_TRUE(plain) << accept;
        EXPECT_EQ(plain->body, "let x = 1;") << accept;
        EXPECT_EQ(header(*plain, "Content-Encoding"), "") << accept;
        EXPECT_NE(header(*plain, "ETag"), header(*packed, "ETag")) << accept;
    }
    // A revalidation with the gzip ETag is answered 304 only for the gzip encoding.
    request.headers["if-none-match"] = header(*packed, "ETag");
    request.headers["accept-encoding"] = "gzip";
    auto again = files.serve("assets/main-AB12.js", request);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304);
    request.headers["accept-encoding"] = "";
    auto other = files.serve("assets/main-AB12.js", request);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 200);
}

TEST_F(StaticFilesTest, NoGzipTwinThroughASymlinkOrWithoutItsFile) {
    // A .gz planted as a link out of the folder is not followed: the plain file is served.
    fs::create_symlink("../../secret.txt", m_dir / "web/assets/main-AB12.js.gz");
    write(m_dir / "web/assets/lone.js.gz", "LONE");
    StaticFiles files(m_dir / "web");
    HttpRequest request;
    request.headers["accept-encoding"] = "gzip";
    auto script = files.serve("assets/main-AB12.js", request);
    ASSERT_TRUE(script);
    EXPECT_EQ(script->body, "let x = 1;");
    EXPECT_EQ(header(*script, "Content-Encoding"), "");
    auto lone = files.serve("assets/lone.js", request);
    ASSERT_FALSE(lone);
    EXPECT_EQ(lone.error().status, 404);
}

TEST_F(StaticFilesTest, GzipOnlyWhenAcceptEncodingAdmitsIt) {
    write(m_dir / "web/assets/main-AB12.js.gz", "GZIP-BYTES");
    StaticFiles files(m_dir / "web");
    HttpRequest request;
    for (const char* yes : {"gzip", "GZIP", "deflate, gzip", "gzip;q=0.5", "br;q=1.0, gzip ; q=0.1", " gzip "}) {
        request.headers["accept-encoding"] = yes;
        auto answer = files.serve("assets/main-AB12.js", request);
        ASSERT_TRUE(answer) << yes;
        EXPECT_EQ(answer->body, "GZIP-BYTES") << yes;
    }
    for (const char* no : {"", "identity", "br", "gzip;q=0", "gzip; q=0.000", "x-gzip2", "deflate,  br"}) {
        request.headers["accept-encoding"] = no;
        auto answer = files.serve("assets/main-AB12.js", request);
        ASSERT_TRUE(answer) << no;
        EXPECT_EQ(answer->body, "let x = 1;") << no;
    }
}

TEST(StaticFilesTypes, ByExtension) {
    EXPECT_EQ(content_type_for("a.css"), "text/css; charset=utf-8");
    EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
    EXPECT_EQ(content_type_for("a.js.map"), "application/json");
    EXPECT_EQ(content_type_for("a.exe"), "application/octet-stream");
}

}  // namespace
}  // namespace corral::daemon
