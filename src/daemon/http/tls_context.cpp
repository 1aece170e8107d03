#include "daemon/http/tls_context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/ssl/context.hpp>
#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/private_file.h"
#include "base/unique_fd.h"

namespace corral::daemon {

namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;

namespace {

template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T* pointer) const { Free(pointer); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

/// The reason OpenSSL gave for its last failure (and clears its error queue).
std::string openssl_reason() {
    std::string reason;
    while (unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        reason = text;  // the last one is the outermost
    }
    return reason.empty() ? "unknown OpenSSL error" : reason;
}

std::string fingerprint_of(X509* cert) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) return {};
    std::string text;
    for (unsigned int i = 0; i < length; ++i) text += fmt::format("{}{:02X}", i ? ":" : "", digest[i]);
    return text;
}

/// Can this process read `path`? (A clear errno message before OpenSSL's terse one.)
Result<void> check_readable(const fs::path& path, const std::string& flag) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid())
        return fail(fmt::format("{} {}: cannot read it: {}", flag, path.string(), std::strerror(errno)), errno);
    return {};
}

Result<void> write_file_atomically(const fs::path& path, const std::string& data, mode_t mode) {
    return corral::write_file_atomically(path.string(), data, mode);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<size_t>(size));
}

/// A new self-signed certificate and its key, both as PEM text.
Result<std::pair<std::string, std::string>> make_self_signed(const std::string& hostname) {
    auto failed = [](const char* what) { return fail(fmt::format("{}: {}", what, openssl_reason())); };
    PkeyPtr key(EVP_EC_gen("P-256"));
    if (!key) return failed("generating an ECDSA P-256 key");
    X509Ptr cert(X509_new());
    if (!cert) return failed("making a certificate");
    X509_set_version(cert.get(), 2);  // v3
    BnPtr serial(BN_new());
    if (!serial || BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
        return failed("choosing a serial number");
    // An hour back, for clients whose clock is a little behind.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    const std::string common_name = "corrald@" + hostname;
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Corral"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                               -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);

    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    std::string names = "DNS:localhost,IP:127.0.0.1,IP:::1";
    // A host name with characters outside a DNS name would break the extension's syntax.
    if (!hostname.empty() && hostname != "localhost" &&
        hostname.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") ==
            std::string::npos)
        names += ",DNS:" + hostname;
    const std::pair<int, std::string> extensions[] = {
        {NID_subject_alt_name, names},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
    };
    for (const auto& [nid, value] : extensions) {
        ExtPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
        if (!extension || X509_add_ext(cert.get(), extension.get(), -1) != 1)
            return failed("adding a certificate extension");
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return failed("signing the certificate");

    BioPtr key_pem(BIO_new(BIO_s_mem()));
    BioPtr cert_pem(BIO_new(BIO_s_mem()));
    if (!key_pem || !cert_pem ||
        PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(cert_pem.get(), cert.get()) != 1)
        return failed("encoding the certificate");
    return std::pair{bio_text(cert_pem.get()), bio_text(key_pem.get())};
}

Result<std::unique_ptr<ssl::context>> load(const fs::path& cert, const fs::path& key, const std::string& cert_flag,
                                           const std::string& key_flag) {
    TRY_VOID(check_readable(cert, cert_flag));
    TRY_VOID(check_readable(key, key_flag));
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1)
        return fail(fmt::format("{} {}: not a PEM certificate ({})", cert_flag, cert.string(), openssl_reason()),
                    EINVAL);
    if (SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail(fmt::format("{} {}: not a PEM private key, or not the key of {} {} ({})", key_flag, key.string(),
                                cert_flag, cert.string(), openssl_reason()),
                    EINVAL);
    if (SSL_CTX_check_private_key(native) != 1)
        return fail(fmt::format("{} {} is not the private key of {} {}", key_flag, key.string(), cert_flag,
                                cert.string()),
                    EINVAL);
    return context;
}

}  // namespace

TlsContext::TlsContext(std::unique_ptr<ssl::context> context, std::string fingerprint, fs::path cert_path)
    : m_context(std::move(context)), m_fingerprint(std::move(fingerprint)), m_cert_path(std::move(cert_path)) {}

TlsContext::~TlsContext() = default;

Result<std::unique_ptr<TlsContext>> TlsContext::from_files(const fs::path& cert, const fs::path& key) {
    auto context = TRY(load(cert, key, "--tls-cert", "--tls-key"));
    std::string fingerprint = fingerprint_of(SSL_CTX_get0_certificate(context->native_handle()));
    return std::unique_ptr<TlsContext>(new TlsContext(std::move(context), std::move(fingerprint), cert));
}

Result<std::unique_ptr<TlsContext>> TlsContext::self_signed(const fs::path& dir, const std::string& hostname) {
    const fs::path cert = dir / "server.crt";
    const fs::path key = dir / "server.key";
    std::error_code error;
    const bool have_cert = fs::exists(cert, error);
    const bool have_key = fs::exists(key, error);
    if (have_cert && !have_key)
        return fail(fmt::format("{} exists but its key {} does not: restore the key, or remove both to get a new "
                                "certificate (clients must then pin the new fingerprint)",
                                cert.string(), key.string()),
                    ENOENT);
    if (!have_cert) {
        fs::create_directories(dir, error);
        if (error) return fail(fmt::format("creating {}: {}", dir.string(), error.message()), error.value());
        if (::chmod(dir.c_str(), 0700) != 0) return fail_errno(fmt::format("chmod {}", dir.string()));
        auto [cert_pem, key_pem] = TRY_CONTEXT(make_self_signed(hostname), "creating a self-signed certificate");
        // The key first: a crash in between leaves a key without a certificate, which the next
        // start replaces, never a certificate without its key.
        TRY_VOID(write_file_atomically(key, key_pem, 0600));
        TRY_VOID(write_file_atomically(cert, cert_pem, 0644));
    }
    auto context = TRY(load(cert, key, "the certificate", "its key"));
    std::string fingerprint = fingerprint_of(SSL_CTX_get0_certificate(context->native_handle()));
    return std::unique_ptr<TlsContext>(new TlsContext(std::move(context), std::move(fingerprint), cert));
}

}  // namespace corral::daemon
