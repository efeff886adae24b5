//! `proxy`: the library's stack in front of an MCP server that already speaks Streamable HTTP.
//!
//! Many MCP servers already serve HTTP but have no authentication, or one their owners would
//! rather not write. `mcp-auth-gateway proxy UPSTREAM_URL` gives them the front door `wrap`
//! gives stdio servers ([`crate::wrap::protect`]: Origin → auth → session binding → per-tool
//! scopes) and forwards what passes to the upstream, as a reverse proxy does:
//!
//! - **Streamed both ways, never buffered.** The request body goes up as it arrives and the
//!   response comes back frame by frame: an event stream (`text/event-stream`) reaches the
//!   client event by event, as the upstream writes it, however long it stays open (MCP
//!   2025-11-25, "Transports" § Streamable HTTP). Only with `MCP_AUTH_TOOL_SCOPES` is a
//!   request body read first (up to `--max-message-bytes`), since the scope check needs it.
//! - **Sessions and resumption pass.** `Mcp-Session-Id`, `MCP-Protocol-Version` and
//!   `Last-Event-ID` go up, `Mcp-Session-Id` comes back; the binding layer ties each session
//!   to the principal that opened it, so another principal's requests with its id get `404`
//!   and never reach the upstream.
//! - **The client's credentials stay here.** `Authorization` (and `Proxy-Authorization`) are
//!   never forwarded: a token issued for this gateway is not the upstream's to see or replay
//!   (MCP 2025-11-25, "Authorization" § Access Token Privilege Restriction: servers must not
//!   pass tokens through). Hop-by-hop headers (RFC 9110 § 7.6.1) are dropped both ways.
//!   The query string goes up after the upstream URL's own, without any `access_token`
//!   parameter (RFC 6750 § 2.3: a token a client put in the URI, which this gateway never
//!   accepts, is not passed on either).
//! - **The upstream learns who calls.** Each request carries the authenticated caller:
//!   `X-MCP-Auth-Subject`, `X-MCP-Auth-Scopes` (space-separated), `X-MCP-Auth-Client-Id` and
//!   `X-MCP-Auth-Issuer` when known. Every `X-MCP-Auth-*` header a client sends is removed
//!   first, whatever its name, so that a caller cannot claim to be someone else. The
//!   upstream must only be reachable through the gateway for these headers to mean anything
//!   (bind it to loopback or a private network). `--no-identity-headers` sends none.
//! - **Failures are answers.** An upstream that cannot be reached (refused, timed out,
//!   reset before its headers) gives `502 Bad Gateway` with a JSON-RPC error body, which MCP
//!   clients can read; the cause goes to the log, not to the client. An upstream `401`
//!   means the upstream does not trust the gateway: it becomes `502` too, rather than a
//!   challenge that would send the client to authenticate somewhere else.
//!
//! ```no_run
//! # async fn run() {
//! use clap::Parser;
//! use mcp_auth_gateway::cli::{Cli, Commands};
//! let cli = Cli::parse_from(["mcp-auth-gateway", "proxy", "http://127.0.0.1:3000/mcp"]);
//! let Commands::Proxy(args) = cli.command else { unreachable!() };
//! mcp_auth_gateway::proxy::run(args).await.unwrap();
//! # }
//! ```

use std::time::Duration;

use axum::{
    Extension, Router,
    body::Body,
    extract::{Request, State},
    response::Response,
    routing::any,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use mcp_server_auth::AuthInfo;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, StartError},
    bridge::INTERNAL_ERROR,
    cli::ProxyArgs,
    message,
    wrap::{self, Bound},
};

/// `X-MCP-Auth-Subject`: the caller's subject.
pub const SUBJECT: HeaderName = HeaderName::from_static("x-mcp-auth-subject");
/// `X-MCP-Auth-Scopes`: the caller's scopes, space-separated.
pub const SCOPES: HeaderName = HeaderName::from_static("x-mcp-auth-scopes");
/// `X-MCP-Auth-Client-Id`: the OAuth client the caller's token was issued to.
pub const CLIENT_ID: HeaderName = HeaderName::from_static("x-mcp-auth-client-id");
/// `X-MCP-Auth-Issuer`: the issuer of the caller's token.
pub const ISSUER: HeaderName = HeaderName::from_static("x-mcp-auth-issuer");
/// The prefix of every identity header; incoming ones are removed.
pub const IDENTITY_PREFIX: &str = "x-mcp-auth-";

/// How long open streams may take to finish after a signal.
const DRAIN: Duration = Duration::from_secs(5);

/// The upstream and how to reach it. Clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    url: reqwest::Url,
    identity: bool,
    /// Client credentials besides `Authorization` that never go up (a proxy's assertion).
    credentials: Vec<HeaderName>,
}

impl Upstream {
    /// An upstream at `url`: connections time out after `connect_timeout`, redirects are
    /// not followed (an answer is passed on as it is), no proxy from the environment is used;
    /// `identity` says whether the caller's identity headers are sent.
    pub fn new(
        url: reqwest::Url,
        connect_timeout: Duration,
        identity: bool,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            url,
            identity,
            credentials: Vec::new(),
        })
    }

    /// Never forwards header `name` either: a credential of the client's other than
    /// `Authorization` (the identity-aware proxy's assertion, when one is configured).
    pub fn never_forward(mut self, name: HeaderName) -> Self {
        self.credentials.push(name);
        self
    }
}

/// The forwarding endpoint at `path`, without protection: put it inside the auth stack
/// ([`wrap::protect`]).
pub fn router(upstream: Upstream, path: &str) -> Router {
    Router::new().route(path, any(forward)).with_state(upstream)
}

/// Whether `name` is hop-by-hop (RFC 9110 § 7.6.1), or named in `Connection`.
fn hop_by_hop(name: &HeaderName, connection: &[String]) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authenticate"
    ) || connection
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name.as_str()))
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The headers that go up: the client's, less hop-by-hop ones, `Host`, its credentials and
/// any identity header; plus the caller's identity (`Err` if it cannot be a header value).
pub fn upstream_headers(
    incoming: &HeaderMap,
    caller: &AuthInfo,
    identity: bool,
    credentials: &[HeaderName],
) -> Result<HeaderMap, http::header::InvalidHeaderValue> {
    let connection = connection_tokens(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let dropped = hop_by_hop(name, &connection)
            || name == header::HOST
            || name == header::AUTHORIZATION
            || name == header::PROXY_AUTHORIZATION
            || credentials.contains(name)
            || name.as_str().starts_with(IDENTITY_PREFIX);
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    if identity {
        out.insert(SUBJECT, HeaderValue::from_str(caller.subject())?);
        out.insert(SCOPES, HeaderValue::from_str(&caller.scopes().to_string())?);
        if let Some(client_id) = caller.client_id() {
            out.insert(CLIENT_ID, HeaderValue::from_str(client_id)?);
        }
        if let Some(issuer) = caller.issuer() {
            out.insert(ISSUER, HeaderValue::from_str(issuer)?);
        }
    }
    Ok(out)
}

/// A JSON-RPC error (`id: null`: the request is not read) as a response.
fn rpc_error(status: StatusCode, message: &str) -> Response {
    let body = message::error_response(None, INTERNAL_ERROR, message);
    crate::http::json_response(status, body)
}

/// The upstream URL for a request whose query string is `query`: the upstream's own query
/// first, then the request's, less every `access_token` parameter.
fn upstream_url(base: &reqwest::Url, query: Option<&str>) -> reqwest::Url {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !pair.is_empty()
                && url::form_urlencoded::parse(name.as_bytes())
                    .next()
                    .is_none_or(|(name, _)| name != "access_token")
        })
        .collect();
    if kept.is_empty() {
        return base.clone();
    }
    let mut url = base.clone();
    let query = match base.query() {
        Some(own) if !own.is_empty() => format!("{own}&{}", kept.join("&")),
        _ => kept.join("&"),
    };
    url.set_query(Some(&query));
    url
}

async fn forward(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<AuthInfo>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(headers) = upstream_headers(
        &parts.headers,
        &caller,
        upstream.identity,
        &upstream.credentials,
    ) else {
        tracing::error!(
            "the caller's identity cannot be sent as headers (a control character): refused"
        );
        return rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error: the caller's identity cannot be passed to the MCP server",
        );
    };
    let sent = upstream
        .client
        .request(parts.method, upstream_url(&upstream.url, parts.uri.query()))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let res = match sent {
        Ok(res) => res,
        Err(e) => {
            tracing::warn!("the upstream MCP server cannot be reached: {e}");
            return rpc_error(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway: the MCP server behind this gateway cannot be reached; try again \
                 later",
            );
        }
    };
    if res.status() == StatusCode::UNAUTHORIZED {
        tracing::error!(
            "the upstream MCP server answered 401: it must accept the gateway's requests \
             without the client's credentials (which are never forwarded)"
        );
        return rpc_error(
            StatusCode::BAD_GATEWAY,
            "Bad Gateway: the MCP server behind this gateway refused it",
        );
    }
    let res = http::Response::<reqwest::Body>::from(res);
    let (mut parts, body) = res.into_parts();
    let connection = connection_tokens(&parts.headers);
    let names: Vec<HeaderName> = parts.headers.keys().cloned().collect();
    for name in names {
        if hop_by_hop(&name, &connection) {
            parts.headers.remove(&name);
        }
    }
    Response::from_parts(parts, Body::new(body))
}

/// Runs `proxy` until `SIGTERM` or `SIGINT`.
pub async fn run(args: ProxyArgs) -> Result<(), StartError> {
    serve(args, wrap::shutdown_on_signal()).await
}

/// Runs `proxy` until `shutdown` is cancelled.
pub async fn serve(args: ProxyArgs, shutdown: CancellationToken) -> Result<(), StartError> {
    let upstream = Upstream::new(
        args.upstream.clone(),
        args.connect_timeout,
        !args.no_identity_headers,
    )
    .map_err(|e| StartError::Upstream(e.to_string()))?;
    let Bound {
        listener,
        config,
        generated,
    } = wrap::bind(args.listen, &args.path).await?;
    auth::reload_tokens_on_hangup(&config);
    let upstream = match config.assertion_verifier() {
        Some(assertion) => upstream.never_forward(assertion.header().clone()),
        None => upstream,
    };
    let endpoint = router(upstream, &args.path);
    let app = wrap::protect(endpoint, &config, args.max_message_bytes, args.idle_timeout).await?;
    auth::print_connection_help(&config, generated.as_deref());
    tracing::info!(
        upstream = %args.upstream,
        identity_headers = !args.no_identity_headers,
        "forwarding to the upstream MCP server"
    );
    // Open streams are the upstream's: they end when the drain time is over.
    wrap::serve_app(listener, app, shutdown, || {}, DRAIN).await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_goes_up_after_the_upstreams_own_and_never_with_a_token() {
        let base = reqwest::Url::parse("http://127.0.0.1:3000/mcp").unwrap();
        let with_own = reqwest::Url::parse("http://127.0.0.1:3000/mcp?tenant=a").unwrap();
        let up = |base: &reqwest::Url, q: Option<&str>| upstream_url(base, q).to_string();
        assert_eq!(up(&base, None), "http://127.0.0.1:3000/mcp");
        assert_eq!(up(&base, Some("x=1&y")), "http://127.0.0.1:3000/mcp?x=1&y");
        assert_eq!(
            up(&with_own, Some("x=1")),
            "http://127.0.0.1:3000/mcp?tenant=a&x=1"
        );
        assert_eq!(
            up(
                &base,
                Some("access_token=s3cret&x=1&access%5Ftoken=s3cret&&")
            ),
            "http://127.0.0.1:3000/mcp?x=1"
        );
        assert_eq!(
            up(&with_own, Some("access_token=s3cret")),
            with_own.to_string()
        );
    }
    use mcp_server_auth::{AuthMethod, ScopeSet};

    #[test]
    fn credentials_hop_by_hop_and_spoofed_identity_never_go_up() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        h.insert(header::CONNECTION, HeaderValue::from_static("x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("x-mcp-auth-subject", HeaderValue::from_static("mallory"));
        h.insert("x-mcp-auth-anything", HeaderValue::from_static("1"));
        h.insert("last-event-id", HeaderValue::from_static("e-7"));
        h.insert("mcp-session-id", HeaderValue::from_static("s"));
        let alice = AuthInfo::builder("alice", AuthMethod::StaticBearer)
            .scopes(ScopeSet::parse("mcp:read mcp:write").unwrap())
            .build();
        h.insert("cf-access-jwt-assertion", HeaderValue::from_static("a.b.c"));
        let assertion = [HeaderName::from_static("cf-access-jwt-assertion")];
        let up = upstream_headers(&h, &alice, true, &assertion).unwrap();
        assert!(!up.contains_key("cf-access-jwt-assertion"));
        assert_eq!(up["x-mcp-auth-subject"], "alice");
        assert_eq!(up["x-mcp-auth-scopes"], "mcp:read mcp:write");
        assert!(!up.contains_key("x-mcp-auth-anything") && !up.contains_key(CLIENT_ID));
        assert!(!up.contains_key(header::AUTHORIZATION) && !up.contains_key("x-private"));
        assert_eq!(up["last-event-id"], "e-7");
        assert_eq!(up["mcp-session-id"], "s");
        let none = upstream_headers(&h, &alice, false, &[]).unwrap();
        assert!(!none.keys().any(|k| k.as_str().starts_with(IDENTITY_PREFIX)));
    }
}
