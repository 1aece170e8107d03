#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "base/result.h"

namespace boost::asio::ssl {
class context;
}

namespace corral::daemon {

/// The server side of corrald's TLS listeners: a certificate, its key, and OpenSSL settings
/// (TLS 1.2 or newer). Shared by every TCP listener; read-only once made.
class TlsContext {
public:
    /// Loads a PEM certificate (chain) and its private key: `--tls-cert FILE --tls-key FILE`.
    /// Errors name the flag and the file: unreadable, not PEM, or a key that is not the
    /// certificate's.
    static Result<std::unique_ptr<TlsContext>> from_files(const std::filesystem::path& cert,
                                                          const std::filesystem::path& key);

    /// `<dir>/server.crt` and `<dir>/server.key`: a self-signed certificate (ECDSA P-256, 10 years,
    /// names localhost, `hostname`, 127.0.0.1 and ::1) created the first time, with the key mode
    /// 0600 and the folder 0700, and reused afterwards so that clients' pinned fingerprint stays
    /// valid. A certificate without its key is an error (nothing is overwritten).
    static Result<std::unique_ptr<TlsContext>> self_signed(const std::filesystem::path& dir,
                                                           const std::string& hostname);

    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    /// SHA-256 of the certificate (DER), as `openssl x509 -fingerprint -sha256` prints it:
    /// 32 uppercase hex pairs joined by ':'.
    const std::string& fingerprint() const { return m_fingerprint; }
    const std::filesystem::path& cert_path() const { return m_cert_path; }
    boost::asio::ssl::context& native() { return *m_context; }

private:
    TlsContext(std::unique_ptr<boost::asio::ssl::context> context, std::string fingerprint,
               std::filesystem::path cert_path);

    std::unique_ptr<boost::asio::ssl::context> m_context;
    std::string m_fingerprint;
    std::filesystem::path m_cert_path;
};

}  // namespace corral::daemon
