//! Outbound HTTP: every request this crate makes (JWKS, authorization server metadata, token
//! introspection) goes through here, under the same rules.
//!
//! What this crate fetches decides who gets in: a key set substituted on the way forges every
//! token. So every fetch:
//! - goes to `https`, or to plain `http` only on a loopback host (or with the explicit
//!   opt-out of the caller), and never to a URL with user information;
//! - follows at most 3 redirects (a `GET` of keys or metadata) or none at all (an introspection
//!   `POST`, which carries a token and our client credentials: a redirect could send them
//!   anywhere), never from `https` to `http`, and each to a URL that passes the same check (a
//!   client of the user's own may follow more: where it ends is checked, and a fetch that
//!   follows none refuses any answer from elsewhere);
//! - ends within one timeout, connecting and reading the whole body included;
//! - reads at most a body cap, whatever `Content-Length` says;
//! - reports failures as text that names the URL (callers redact user information before it
//!   reaches a message or a log).
//!
//! ```
//! # #[cfg(feature = "remote-jwks")] {
//! // The rules are crate-internal; what they accept shows in the public API:
//! use mcp_server_auth::jwt::{Issuer, RemoteJwksOptions};
//! let refused = Issuer::with_jwks_uri("https://a", "http://auth.example.com/jwks", RemoteJwksOptions::default());
//! assert!(refused.unwrap_err().to_string().contains("plain http"));
//! # }
//! ```

use std::{error::Error as _, fmt, time::Duration};

use reqwest::{RequestBuilder, Url, header, redirect};

use crate::resource::{ResourceUrl, ResourceUrlError};

/// The most redirects a `GET` of keys or metadata follows.
pub(crate) const MAX_REDIRECTS: usize = 3;

/// The rules of one kind of fetch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The whole time one fetch may take.
    pub(crate) timeout: Duration,
    /// The largest body read.
    pub(crate) max_body_bytes: usize,
    /// Plain `http` allowed on hosts that are not loopback (an explicit opt-out).
    pub(crate) allow_plain_http: bool,
    /// The most redirects followed: [`MAX_REDIRECTS`], or 0 for a request that must be answered
    /// where it was sent.
    pub(crate) max_redirects: usize,
}

/// Checks a URL to fetch from: https, or http on a loopback host; no user information.
pub(crate) fn check_url(url: &str, allow_plain_http: bool) -> Result<Url, String> {
    let checked = if allow_plain_http {
        ResourceUrl::parse_allowing_plain_http(url)
    } else {
        ResourceUrl::parse(url)
    };
    match checked {
        Ok(_) => {}
        Err(ResourceUrlError::InsecureHttp(_)) => {
            return Err(
                "it uses plain http on a host that is not loopback, so anyone on the path \
                 could change the answer (substitute keys and forge tokens). Use https (or set \
                 allow_plain_http_non_loopback on a network nothing else can reach)"
                    .to_owned(),
            );
        }
        Err(e) => return Err(e.to_string()),
    }
    let parsed = Url::parse(url).map_err(|e| format!("it is not a valid URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it has user information (user:password@host); remove it".to_owned());
    }
    Ok(parsed)
}

/// An HTTP client that follows these rules: rustls with the platform's roots, the timeout, and
/// a redirect policy that checks every hop.
pub(crate) fn client(limits: &Limits) -> Result<reqwest::Client, String> {
    let allow_plain_http = limits.allow_plain_http;
    let max_redirects = limits.max_redirects;
    let policy = redirect::Policy::custom(move |attempt| {
        if max_redirects == 0 {
            let message = format!(
                "a redirect to {} was refused: this endpoint must answer where it is configured",
                attempt.url()
            );
            return attempt.error(message);
        }
        if attempt.previous().len() > max_redirects {
            return attempt.error(format!("more than {max_redirects} redirects"));
        }
        if attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https")
        {
            return attempt.error("a redirect from https to plain http was refused");
        }
        match check_url(attempt.url().as_str(), allow_plain_http) {
            Ok(_) => attempt.follow(),
            Err(why) => {
                let message = format!("a redirect to {} was refused: {why}", attempt.url());
                attempt.error(message)
            }
        }
    });
    reqwest::Client::builder()
        .timeout(limits.timeout)
        .connect_timeout(limits.timeout)
        .redirect(policy)
        .user_agent(concat!("mcp-server-auth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| describe(&e, limits.timeout))
}

/// A reqwest error with its causes, for messages.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn timed_out(timeout: Duration) -> String {
    format!(
        "no complete answer within {} ms (the timeout)",
        timeout.as_millis()
    )
}

/// A response that was read whole.
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    /// Every `Cache-Control` field, joined with commas.
    pub(crate) cache_control: Option<String>,
    /// `Age`, in seconds.
    pub(crate) age: Option<u64>,
}

/// Why a fetch failed. Its messages may quote URLs with user information (reqwest's errors name
/// the URL): callers redact them.
pub(crate) enum FetchError {
    /// A response with a status other than 2xx.
    Status(reqwest::StatusCode),
    /// Anything else: network, timeout, size, a refused redirect.
    Other(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "the server answered {s}"),
            Self::Other(why) => f.write_str(why),
        }
    }
}

/// GETs `url` as JSON, within the limits.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &Url,
    limits: &Limits,
) -> Result<Body, FetchError> {
    let request = client
        .get(url.clone())
        .header(header::ACCEPT, "application/json");
    send(request, url, limits).await
}

/// Sends `request` (to `url`) and reads the whole response, within the limits.
pub(crate) async fn send(
    request: RequestBuilder,
    url: &Url,
    limits: &Limits,
) -> Result<Body, FetchError> {
    let max = limits.max_body_bytes;
    let too_big = || {
        FetchError::Other(format!(
            "the body is larger than max_body_bytes ({max} bytes)"
        ))
    };
    let fetch = async {
        let mut response = request
            .timeout(limits.timeout)
            .send()
            .await
            .map_err(|e| FetchError::Other(describe(&e, limits.timeout)))?;
        // A client of the user's own may follow redirects anywhere: check where it ended.
        if response.url() != url && limits.max_redirects == 0 {
            return Err(FetchError::Other(format!(
                "redirected to {}: this endpoint must answer where it is configured",
                response.url()
            )));
        }
        if response.url() != url {
            check_url(response.url().as_str(), limits.allow_plain_http).map_err(|why| {
                FetchError::Other(format!("redirected to {}: {why}", response.url()))
            })?;
        }
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_big());
        }
        let headers = response.headers();
        let cache_control = headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let cache_control = (!cache_control.is_empty()).then_some(cache_control);
        let age = headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Other(describe(&e, limits.timeout)))?
        {
            if bytes.len() + chunk.len() > max {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Body {
            bytes,
            cache_control,
            age,
        })
    };
    match tokio::time::timeout(limits.timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Other(timed_out(limits.timeout))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_checked() {
        assert!(check_url("https://auth.example.com/jwks", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("http://localhost/jwks", false).is_ok());
        assert!(check_url("http://[::1]/jwks", false).is_ok());
        assert!(check_url("http://auth.example.com/jwks", false).is_err());
        assert!(check_url("http://auth.example.com/jwks", true).is_ok());
        assert!(check_url("ftp://auth.example.com/jwks", true).is_err());
        assert!(check_url("https://user@auth.example.com/jwks", false).is_err());
        assert!(check_url("https://u:p@auth.example.com/jwks", false).is_err());
        assert!(check_url("https://auth.example.com/jwks#x", false).is_err());
        assert!(check_url("/jwks", false).is_err());
    }
}
