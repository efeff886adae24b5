//! The audit trail: one structured event for each decision of each layer, and the metrics that
//! count the same decisions.
//!
//! An operator on call for an MCP server needs to answer "who was let in, who was refused,
//! and why" after the fact, and to see a guessing attack or an expired signing key as it
//! happens. So every layer that decides (Origin, throttling, authentication, required scopes,
//! MCP operation scopes) hands one decision record to this module, which turns it into **both**
//! a `tracing` event on the target [`TARGET`] (`mcp_server_auth::audit`, level `INFO`) and the
//! counters of [`metrics`]: the log and the numbers come from the same record, so they never
//! disagree.
//!
//! # The fields
//!
//! Stable names, never renamed within a major version. A field that is not known is absent.
//!
//! | field | meaning |
//! |---|---|
//! | (time) | the subscriber's timestamp |
//! | `layer` | who decided: `origin`, `throttle`, `auth`, `scopes` (a [`RequireScopesLayer`](crate::RequireScopesLayer)), `mcp_scopes` |
//! | `outcome` | `allowed`, `refused` or `throttled` |
//! | `status` | the HTTP status of the refusal (absent for `allowed`: the inner service answers) |
//! | `reason` | why it was refused: [`Rejection::reason_code`](crate::rejection::Rejection::reason_code) (`no_credentials`, `invalid_request`, `invalid_token`, `expired`, `wrong_audience`, `insufficient_scope`, `unavailable`, …), `origin`, `throttled`, `invalid_mcp_request` or `body_too_large` |
//! | `scheme` | the `Authorization` scheme presented: `bearer`, `basic`, `dpop`, `other` or `none` |
//! | `method` | how the caller was authenticated ([`AuthMethod::as_str`](crate::AuthMethod::as_str)) |
//! | `subject`, `client_id`, `issuer` | of the authenticated caller (a static token's name, a Basic user, a JWT's `sub`) |
//! | `mcp_method`, `mcp_name` | the MCP method and tool / prompt / resource name: what the MCP scope layer read, else the `Mcp-Method` / `Mcp-Name` headers |
//! | `peer` | the TCP peer address, read as the throttle reads it |
//! | `request_id` | the `x-request-id` header |
//! | `latency_us` | microseconds from the layer's start on the request to its decision |
//!
//! Values a client chose (`mcp_method`, `mcp_name`, `request_id`) are cut to 128 bytes and
//! every byte outside a conservative set of printable ASCII is replaced with `_`, so that no
//! client can forge a line or a field. **No field ever carries a token, a password, a cookie,
//! an `Authorization` value or any other secret**: a record is built from the decision and from
//! the fields above only, never from the credentials.
//!
//! # Who emits what
//!
//! | layer | events |
//! |---|---|
//! | Origin | `refused` (`403`, reason `origin`) |
//! | throttle | `throttled` (`429`, reason `throttled`) |
//! | auth | `allowed` once the identity is admitted; `refused` for its `401` / `400` / `403` / `503` |
//! | `scopes`, `mcp_scopes` | `refused` only |
//!
//! So a request has exactly one `allowed` event, from the auth layer, and a request the auth
//! layer admits but a scope layer then refuses has two: `allowed` (`layer=auth`) then `refused`
//! (`layer=mcp_scopes`). The last event of a request is its fate. The metadata document and
//! requests that pass a layer without a decision (no `Origin` header, a preflight) make none.
//!
//! # Cost
//!
//! When no subscriber listens on [`TARGET`] and no metrics are recorded, a layer asks
//! `tracing` once per request whether anyone listens (a cached callsite check) and loads one
//! atomic flag, and does nothing else: no clock read, no allocation. Metrics are recorded once
//! the program has installed a recorder and called [`metrics::describe`] (with the `metrics`
//! feature); then every decision is timed and counted.
//!
//! # Writing the events
//!
//! Any `tracing` subscriber will do; filter it to [`TARGET`]. The examples and the gateway
//! write them as JSON lines to `MCP_AUTH_AUDIT_LOG` (see [`AuditDestination`] and, with the
//! `audit-log` feature, `audit::log::AuditLog`, which reopens its file on `SIGHUP`):
//!
//! ```
//! use std::{convert::Infallible, sync::{Arc, Mutex}};
//! use http::{Request, Response};
//! use mcp_server_auth::{AuthLayer, audit, bearer::StaticBearer};
//! use tower::{ServiceExt, service_fn};
//! use tracing_subscriber::{Layer as _, filter::Targets, layer::SubscriberExt};
//!
//! #[derive(Clone, Default)]
//! struct Lines(Arc<Mutex<Vec<u8>>>);
//! impl std::io::Write for Lines {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//! let lines = Lines::default();
//! let writer = lines.clone();
//! let subscriber = tracing_subscriber::registry().with(
//!     tracing_subscriber::fmt::layer()
//!         .json()
//!         .flatten_event(true)
//!         .with_writer(move || writer.clone())
//!         .with_filter(Targets::new().with_target(audit::TARGET, tracing::Level::INFO)),
//! );
//! let _guard = tracing::subscriber::set_default(subscriber);
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let tokens = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
//! let service = tower::Layer::layer(&AuthLayer::new(tokens), service_fn(|_: Request<String>| async {
//!     Ok::<_, Infallible>(Response::new(String::new()))
//! }));
//! let response = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), 401);
//! # });
//! let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
//! let event: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
//! assert_eq!(event["outcome"], "refused");
//! assert_eq!(event["reason"], "no_credentials");
//! assert_eq!(event["status"], 401);
//! ```

mod fields;
#[cfg(feature = "audit-log")]
#[cfg_attr(docsrs, doc(cfg(feature = "audit-log")))]
pub mod log;
pub mod metrics;

use std::{fmt, path::PathBuf, str::FromStr, time::Instant};

use http::{Extensions, HeaderMap, StatusCode};
use tracing::Level;

use crate::{credentials::Scheme, identity::AuthInfo};

/// The `tracing` target of every audit event.
pub const TARGET: &str = "mcp_server_auth::audit";

/// Where the example servers and the gateway write the audit events (`MCP_AUTH_AUDIT_LOG`):
/// `stderr`, `stdout`, or any other value as a file path, appended to.
///
/// ```
/// use mcp_server_auth::audit::AuditDestination;
/// assert_eq!("stderr".parse::<AuditDestination>().unwrap(), AuditDestination::Stderr);
/// assert!(matches!("/var/log/mcp/audit.jsonl".parse(), Ok(AuditDestination::File(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditDestination {
    /// The standard error stream.
    Stderr,
    /// The standard output stream.
    Stdout,
    /// A file, opened for appending (and reopened on `SIGHUP`, for log rotation).
    File(PathBuf),
}

/// An empty audit log destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log destination is empty: use stderr, stdout or a file path")]
#[non_exhaustive]
pub struct AuditDestinationError;

impl FromStr for AuditDestination {
    type Err = AuditDestinationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err(AuditDestinationError),
            "stderr" => Ok(Self::Stderr),
            "stdout" => Ok(Self::Stdout),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for AuditDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stderr => f.write_str("stderr"),
            Self::Stdout => f.write_str("stdout"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The layer that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    Origin,
    Throttle,
    Auth,
    Scopes,
    McpScopes,
}

impl Layer {
    fn as_str(self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Throttle => "throttle",
            Self::Auth => "auth",
            Self::Scopes => "scopes",
            Self::McpScopes => "mcp_scopes",
        }
    }
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    Refused,
    Throttled,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
        }
    }
}

/// The name of a presented scheme, for the `scheme` field and label.
pub(crate) fn scheme_name(scheme: Option<Scheme>) -> &'static str {
    match scheme {
        None => "none",
        Some(Scheme::Bearer) => "bearer",
        Some(Scheme::Basic) => "basic",
        Some(Scheme::DPoP) => "dpop",
        Some(Scheme::Other) => "other",
    }
}

/// When a layer started on a request; taken only when the decision will be recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start(Option<Instant>);

impl Start {
    /// Now, if anyone listens (a subscriber on [`TARGET`], or metrics being recorded: see
    /// [`metrics::describe`]); else nothing, and the decision will not be recorded.
    #[inline]
    pub(crate) fn now() -> Self {
        if metrics::on() || tracing::enabled!(target: TARGET, Level::INFO) {
            Self(Some(Instant::now()))
        } else {
            Self(None)
        }
    }

    /// Whether the decision will be recorded.
    #[inline]
    pub(crate) fn recording(self) -> bool {
        self.0.is_some()
    }
}

/// One decision of one layer about one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decision<'a> {
    layer: Layer,
    outcome: Outcome,
    status: Option<StatusCode>,
    reason: Option<&'static str>,
    scheme: Option<Scheme>,
    info: Option<&'a AuthInfo>,
    /// The MCP method and name the MCP scope layer read.
    operation: Option<(&'a str, Option<&'a str>)>,
}

impl<'a> Decision<'a> {
    /// The auth layer admits `info`.
    pub(crate) fn allowed(scheme: Option<Scheme>, info: Option<&'a AuthInfo>) -> Self {
        Self {
            layer: Layer::Auth,
            outcome: Outcome::Allowed,
            status: None,
            reason: None,
            scheme,
            info,
            operation: None,
        }
    }

    /// `layer` refuses with `status`, for `reason`.
    pub(crate) fn refused(layer: Layer, status: StatusCode, reason: &'static str) -> Self {
        Self {
            layer,
            outcome: if layer == Layer::Throttle {
                Outcome::Throttled
            } else {
                Outcome::Refused
            },
            status: Some(status),
            reason: Some(reason),
            scheme: None,
            info: None,
            operation: None,
        }
    }

    /// The scheme presented.
    pub(crate) fn scheme(mut self, scheme: Option<Scheme>) -> Self {
        self.scheme = scheme;
        self
    }

    /// The authenticated caller.
    pub(crate) fn info(mut self, info: Option<&'a AuthInfo>) -> Self {
        self.info = info;
        self
    }

    /// The MCP operation concerned.
    pub(crate) fn operation(mut self, method: &'a str, name: Option<&'a str>) -> Self {
        self.operation = Some((method, name));
        self
    }

    /// Records the decision, if `start` says anyone listens: the metrics, then the event.
    #[inline]
    pub(crate) fn record(self, start: Start, headers: &HeaderMap, extensions: &Extensions) {
        let Some(started) = start.0 else {
            return;
        };
        let latency = started.elapsed();
        metrics::decision(self.layer, self.outcome, self.reason, self.scheme, latency);
        if tracing::enabled!(target: TARGET, Level::INFO) {
            self.emit(latency.as_micros(), headers, extensions);
        }
    }

    #[inline(never)]
    fn emit(self, latency_us: u128, headers: &HeaderMap, extensions: &Extensions) {
        let (mcp_method, mcp_name) = match self.operation {
            Some((method, name)) => (
                Some(fields::sanitize(method.as_bytes())),
                name.map(|n| fields::sanitize(n.as_bytes())),
            ),
            None => (
                fields::header(headers, "mcp-method"),
                fields::header(headers, "mcp-name"),
            ),
        };
        let request_id = fields::header(headers, "x-request-id");
        let peer = crate::peer::peer(extensions);
        let info = self.info;
        tracing::event!(
            target: TARGET,
            Level::INFO,
            layer = self.layer.as_str(),
            outcome = self.outcome.as_str(),
            status = self.status.map(|s| s.as_u16()),
            reason = self.reason,
            scheme = scheme_name(self.scheme),
            method = info.map(|i| i.method().as_str()),
            subject = info.map(AuthInfo::subject),
            client_id = info.and_then(AuthInfo::client_id),
            issuer = info.and_then(AuthInfo::issuer),
            mcp_method = mcp_method.as_deref(),
            mcp_name = mcp_name.as_deref(),
            peer = peer.map(tracing::field::display),
            request_id = request_id.as_deref(),
            latency_us = u64::try_from(latency_us).unwrap_or(u64::MAX),
            "auth decision"
        );
    }
}

/// The scheme of `headers`' `Authorization` value, if it has one that parses (for the layers
/// in front of the auth layer, which do not read it otherwise).
pub(crate) fn presented(headers: &HeaderMap) -> Option<Scheme> {
    crate::credentials::read_authorization(headers, usize::MAX)
        .ok()
        .flatten()
        .map(|auth| auth.scheme())
}
