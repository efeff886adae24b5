//! `MCP_AUTH_CLIENT_CERT_HEADER`: the header in which trusted proxies forward the client's TLS
//! certificate, for certificate-bound tokens (RFC 8705; see [`crate::mtls`]).
//!
//! Certificate binding is on whenever JWTs or introspection are configured (with a crypto
//! backend): a token bound to a certificate is then accepted only over a connection with that
//! certificate (from the server's TLS acceptor, or from this header when the peer is one of
//! `MCP_AUTH_TRUSTED_PROXIES`), and never without it. The header needs trusted proxies: set
//! alone, it could never be read, and the start fails.
//!
//! ```
//! use mcp_server_auth::config::{ConfigError, EnvConfig};
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
//!     ("MCP_AUTH_CLIENT_CERT_HEADER", "x-ssl-client-cert"),
//!     ("MCP_AUTH_TRUSTED_PROXIES", "10.0.0.5"),
//! ])
//! .unwrap();
//! assert_eq!(config.client_cert_header().map(|h| h.as_str()), Some("x-ssl-client-cert"));
//! let alone = EnvConfig::from_vars([("MCP_AUTH_CLIENT_CERT_HEADER", "x-ssl-client-cert")]);
//! assert_eq!(alone.unwrap_err(), ConfigError::ClientCertHeaderWithoutProxies);
//! ```

use http::HeaderName;

use super::{ConfigError, EnvConfig};
use crate::throttle::TrustedProxies;

/// The variables read here.
pub(super) const VARS: [&str; 1] = ["MCP_AUTH_CLIENT_CERT_HEADER"];

/// Reads `MCP_AUTH_CLIENT_CERT_HEADER` through `take`; `proxies` are the trusted proxies.
pub(super) fn read(
    mut take: impl FnMut(&str) -> Option<String>,
    proxies: &TrustedProxies,
) -> Result<Option<HeaderName>, ConfigError> {
    let Some(name) = take(VARS[0]) else {
        return Ok(None);
    };
    let name = HeaderName::try_from(name.to_ascii_lowercase())
        .map_err(|_| ConfigError::ClientCertHeader)?;
    if proxies.is_empty() {
        return Err(ConfigError::ClientCertHeaderWithoutProxies);
    }
    Ok(Some(name))
}

impl EnvConfig {
    /// The header trusted proxies forward the client certificate in
    /// (`MCP_AUTH_CLIENT_CERT_HEADER`).
    pub fn client_cert_header(&self) -> Option<&HeaderName> {
        self.client_cert_header.as_ref()
    }

    /// Where certificate-bound tokens find the client certificate: the TLS acceptor's
    /// [`ClientCertificate`](crate::mtls::ClientCertificate), or
    /// `MCP_AUTH_CLIENT_CERT_HEADER` from `MCP_AUTH_TRUSTED_PROXIES`.
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    pub fn certificate_options(&self) -> crate::mtls::CertificateOptions {
        let options = crate::mtls::CertificateOptions::new();
        match &self.client_cert_header {
            Some(name) => {
                options.header_from_trusted_proxies(name.clone(), self.trusted_proxies().clone())
            }
            None => options,
        }
    }
}
