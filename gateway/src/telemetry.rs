//! The gateway's own log, its audit trail and its metrics, as an operator on call reads them.
//!
//! Three outputs, kept apart because they go to different people:
//!
//! - **The log** (standard error, `INFO`): start-up, children starting and ending, what a
//!   child writes on its stderr, faults. Never one line per request: the audit events are
//!   left out of it.
//! - **The audit trail** (`MCP_AUTH_AUDIT_LOG`: `stderr`, `stdout` or a file path): one JSON
//!   line per decision of the library's layers (allowed, refused, throttled; who, which tool,
//!   why), the events of the library's `audit` module. A file is appended to and reopened on
//!   `SIGHUP`, so that logrotate can move it away.
//! - **Metrics** (`MCP_AUTH_METRICS_LISTEN`, off unless set): the library's counters and
//!   histogram (`mcp_auth_…`), served for Prometheus at `/metrics` on that address, which
//!   should not be reachable by MCP clients.
//!
//! The two variables are read here, before anything else, so that the first decision is
//! already recorded; they are passed to the library's parsers, so they mean what they mean
//! for the example server.
//!
//! ```
//! use mcp_auth_gateway::telemetry::Telemetry;
//! let t = Telemetry::from_vars([("MCP_AUTH_AUDIT_LOG", "stdout")]).unwrap();
//! assert!(t.audits());
//! assert!(Telemetry::from_vars([("MCP_AUTH_METRICS_LISTEN", "nowhere")]).is_err());
//! ```

use std::net::SocketAddr;

use mcp_server_auth::audit::{self, AuditDestination, log::AuditLog};
use tracing_subscriber::{
    Layer as _, filter::Targets, fmt::MakeWriter, layer::SubscriberExt, registry::LookupSpan,
    util::SubscriberInitExt,
};

/// What the environment asks for beyond the log.
#[derive(Debug, Default)]
pub struct Telemetry {
    audit: Option<AuditDestination>,
    metrics: Option<SocketAddr>,
}

/// A telemetry variable is wrong, or its output cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `MCP_AUTH_AUDIT_LOG` is empty.
    #[error("MCP_AUTH_AUDIT_LOG is empty: use stderr, stdout or a file path")]
    AuditLog,
    /// `MCP_AUTH_METRICS_LISTEN` is not an address.
    #[error("MCP_AUTH_METRICS_LISTEN must be an address such as 127.0.0.1:9464")]
    MetricsListen,
    /// The audit log cannot be opened, or `SIGHUP` cannot be handled.
    #[error("MCP_AUTH_AUDIT_LOG: {0}")]
    Open(std::io::Error),
    /// The metrics endpoint cannot be served.
    #[error("MCP_AUTH_METRICS_LISTEN: {0}")]
    Metrics(String),
}

impl Telemetry {
    /// From the process environment.
    ///
    /// # Errors
    /// A variable that is set but wrong.
    pub fn from_env() -> Result<Self, TelemetryError> {
        Self::from_vars(std::env::vars())
    }

    /// From `vars` (name, value).
    ///
    /// # Errors
    /// A variable that is set but wrong.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, TelemetryError> {
        let mut t = Self::default();
        for (name, value) in vars {
            let value = value.as_ref().trim();
            match name.as_ref() {
                "MCP_AUTH_AUDIT_LOG" => {
                    t.audit = Some(value.parse().map_err(|_| TelemetryError::AuditLog)?);
                }
                "MCP_AUTH_METRICS_LISTEN" if !value.is_empty() => {
                    t.metrics = Some(value.parse().map_err(|_| TelemetryError::MetricsListen)?);
                }
                _ => {}
            }
        }
        Ok(t)
    }

    /// Whether decisions go to an audit log.
    pub fn audits(&self) -> bool {
        self.audit.is_some()
    }

    /// Installs the global `tracing` subscriber (the log, and the audit log if asked for) and
    /// the metrics exporter if asked for. Call it once, in the tokio runtime.
    ///
    /// # Errors
    /// The audit log cannot be opened, or the metrics address cannot be served.
    pub fn install(self) -> Result<(), TelemetryError> {
        let log = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(
                Targets::new()
                    .with_default(tracing::Level::INFO)
                    .with_target(audit::TARGET, tracing::level_filters::LevelFilter::OFF),
            );
        let audit = match &self.audit {
            Some(destination) => {
                let file = AuditLog::open(destination).map_err(TelemetryError::Open)?;
                file.reopen_on_sighup().map_err(TelemetryError::Open)?;
                Some(audit_layer(move || file.writer()))
            }
            None => None,
        };
        tracing_subscriber::registry().with(log).with(audit).init();
        if let Some(listen) = self.metrics {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            PrometheusBuilder::new()
                .with_http_listener(listen)
                .set_buckets_for_metric(
                    Matcher::Full(audit::metrics::VERIFICATION_SECONDS.to_owned()),
                    &[1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0],
                )
                .and_then(PrometheusBuilder::install)
                .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
            audit::metrics::describe();
            tracing::info!("metrics at http://{listen}/metrics");
        }
        Ok(())
    }
}

/// The audit events (target [`audit::TARGET`]) as JSON lines, one per event, to `writer`.
fn audit_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(writer)
        .with_filter(Targets::new().with_target(audit::TARGET, tracing::Level::INFO))
}
