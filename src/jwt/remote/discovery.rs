//! Discovery: finding an issuer's JWKS URL (or its introspection endpoint, RFC 7662) from its
//! metadata (RFC 8414, then OpenID Connect Discovery 1.0 §4), before fetching its keys.
//!
//! The document must name the issuer exactly as configured (RFC 8414 §3.3): otherwise a
//! metadata URL an attacker controls could point at keys of their own.
//!
//! ```no_run
//! use mcp_server_auth::jwt::{Issuer, RemoteJwksOptions};
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::discover("https://auth.example.com", RemoteJwksOptions::default()).await?;
//! assert!(issuer.jwks_uri().is_some());
//! # Ok(())
//! # }
//! ```

use reqwest::Url;

use super::{RemoteJwksOptions, RemoteKeysError};
use crate::{
    fetch,
    jwt::{Issuer, JwtConfigError},
    resource::Redacted,
};

/// The well-known URLs metadata is looked for at: RFC 8414 (path inserted after the host),
/// then OpenID Connect Discovery (path appended).
fn metadata_urls(issuer: &Url, issuer_str: &str) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!(
            "{}/.well-known/openid-configuration",
            issuer_str.trim_end_matches('/')
        ),
    ]
}

/// What this crate reads of an authorization server's metadata (RFC 8414 §2).
#[derive(Debug, Clone, Default)]
pub(crate) struct AsMetadata {
    /// `jwks_uri`: where its signing keys are.
    pub(crate) jwks_uri: Option<String>,
    /// `introspection_endpoint` (RFC 8414 §2, RFC 7662).
    pub(crate) introspection_endpoint: Option<String>,
}

/// Reads `issuer`, `jwks_uri` and `introspection_endpoint` from a metadata document.
fn read_metadata(body: &[u8]) -> Result<(String, AsMetadata), String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON document ({e})"))?;
    let issuer = doc
        .get("issuer")
        .and_then(serde_json::Value::as_str)
        .ok_or("the document has no issuer")?;
    let member = |name: &str| {
        doc.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let found = AsMetadata {
        jwks_uri: member("jwks_uri"),
        introspection_endpoint: member("introspection_endpoint"),
    };
    Ok((issuer.to_owned(), found))
}

/// Finds the metadata of `issuer_url` (RFC 8414, then OpenID Connect Discovery): the first
/// document that names the issuer exactly and has the member `needs` (`jwks_uri` or
/// `introspection_endpoint`). The HTTP client it used is left in `options.client`.
pub(crate) async fn find_metadata(
    issuer_url: &str,
    options: &mut RemoteJwksOptions,
    needs: &'static str,
) -> Result<AsMetadata, RemoteKeysError> {
    options.check()?;
    let bad =
        |reason: String| RemoteKeysError::Config(JwtConfigError::jwks_uri(issuer_url, &reason));
    let issuer =
        fetch::check_url(issuer_url, options.allow_plain_http_non_loopback).map_err(bad)?;
    if issuer.query().is_some() {
        return Err(bad(
            "an issuer identifier has no query (RFC 8414 §2)".to_owned()
        ));
    }
    let client = match &options.client {
        Some(client) => client.clone(),
        None => fetch::client(&options.limits())
            .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?,
    };
    options.client = Some(client.clone());
    let mut tried = Vec::new();
    let mut mismatch = None;
    for url in metadata_urls(&issuer, issuer_url) {
        let parsed = match Url::parse(&url) {
            Ok(u) => u,
            Err(e) => {
                tried.push(format!("{url}: {e}"));
                continue;
            }
        };
        let found = match fetch::get(&client, &parsed, &options.limits()).await {
            Ok(body) => read_metadata(&body.bytes),
            Err(e) => Err(e.to_string()),
        };
        match found {
            Ok((found, _)) if found != issuer_url => {
                tried.push(format!("{url}: the issuer is {found:?}"));
                mismatch.get_or_insert(RemoteKeysError::issuer_mismatch(&url, issuer_url, &found));
            }
            Ok((_, metadata)) => {
                let wanted = match needs {
                    "jwks_uri" => &metadata.jwks_uri,
                    _ => &metadata.introspection_endpoint,
                };
                if wanted.is_none() {
                    tried.push(format!("{url}: the document has no {needs}"));
                    continue;
                }
                tracing::debug!(
                    issuer = %Redacted(issuer_url),
                    metadata = %Redacted(&url),
                    jwks_uri = ?metadata.jwks_uri.as_deref().map(Redacted),
                    introspection_endpoint =
                        ?metadata.introspection_endpoint.as_deref().map(Redacted),
                    "issuer discovered"
                );
                return Ok(metadata);
            }
            Err(why) => tried.push(format!("{url}: {why}")),
        }
    }
    Err(mismatch.unwrap_or_else(|| RemoteKeysError::no_metadata(issuer_url, &tried.join("; "))))
}

impl Issuer {
    /// Finds the issuer's `jwks_uri` from its metadata, then fetches the keys (eagerly).
    ///
    /// Looks first for RFC 8414 authorization server metadata
    /// (`https://h/tenant` → `https://h/.well-known/oauth-authorization-server/tenant`), then for
    /// OpenID Connect metadata (`https://h/tenant/.well-known/openid-configuration`). The
    /// document's `issuer` must equal `issuer_url` exactly; tokens must then carry that same
    /// `iss`. The URLs follow the same rules as [`with_jwks_uri`](Self::with_jwks_uri).
    pub async fn discover(
        issuer_url: &str,
        mut options: RemoteJwksOptions,
    ) -> Result<Self, RemoteKeysError> {
        let metadata = find_metadata(issuer_url, &mut options, "jwks_uri").await?;
        let jwks_uri = metadata.jwks_uri.unwrap_or_default();
        Self::with_jwks_uri_eager(issuer_url, &jwks_uri, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_rfc8414_then_oidc() {
        let urls = |s: &str| metadata_urls(&Url::parse(s).unwrap(), s);
        assert_eq!(
            urls("https://h/tenant"),
            [
                "https://h/.well-known/oauth-authorization-server/tenant",
                "https://h/tenant/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://h"),
            [
                "https://h/.well-known/oauth-authorization-server",
                "https://h/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://h:8443/"),
            [
                "https://h:8443/.well-known/oauth-authorization-server",
                "https://h:8443/.well-known/openid-configuration"
            ]
        );
    }
}
