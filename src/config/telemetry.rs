//! `MCP_AUTH_AUDIT_LOG` and `MCP_AUTH_METRICS_LISTEN`: where a program writes the audit events
//! and serves its metrics (see [`crate::audit`]).
//!
//! The library only reads them: writing the events and serving `/metrics` is the program's
//! (the examples and the gateway do both), so that the library depends on no subscriber and no
//! exporter.
//!
//! ```
//! use mcp_server_auth::{audit::AuditDestination, config::EnvConfig};
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1jaQ"),
//!     ("MCP_AUTH_AUDIT_LOG", "stderr"),
//!     ("MCP_AUTH_METRICS_LISTEN", "127.0.0.1:9464"),
//! ])
//! .unwrap();
//! assert_eq!(config.audit_log(), Some(&AuditDestination::Stderr));
//! assert_eq!(config.metrics_listen().unwrap().port(), 9464);
//! ```

use std::net::SocketAddr;

use super::{ConfigError, EnvConfig};
use crate::audit::AuditDestination;

/// The variables read here.
pub(super) const VARS: [&str; 2] = ["MCP_AUTH_AUDIT_LOG", "MCP_AUTH_METRICS_LISTEN"];

/// Telemetry settings read from the environment.
#[derive(Debug, Clone, Default)]
pub(super) struct TelemetryEnv {
    audit_log: Option<AuditDestination>,
    metrics_listen: Option<SocketAddr>,
}

/// Reads the telemetry variables through `take`.
pub(super) fn read(
    mut take: impl FnMut(&str) -> Option<String>,
) -> Result<TelemetryEnv, ConfigError> {
    let [audit_log, metrics_listen] = VARS.map(&mut take);
    Ok(TelemetryEnv {
        // `take` drops empty values, so a destination is never empty here.
        audit_log: audit_log.and_then(|v| v.parse().ok()),
        metrics_listen: metrics_listen
            .map(|v| v.parse().map_err(|_| ConfigError::MetricsListen))
            .transpose()?,
    })
}

impl EnvConfig {
    /// Where to write the audit events as JSON lines (`MCP_AUTH_AUDIT_LOG`), if anywhere.
    pub fn audit_log(&self) -> Option<&AuditDestination> {
        self.telemetry.audit_log.as_ref()
    }

    /// The address to serve `/metrics` on (`MCP_AUTH_METRICS_LISTEN`), if set; it should not be
    /// reachable by MCP clients.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.telemetry.metrics_listen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_is_off_unless_set_and_a_bad_address_is_named() {
        let c = EnvConfig::from_vars([("MCP_AUTH_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1jaQ")])
            .unwrap();
        assert_eq!((c.audit_log(), c.metrics_listen()), (None, None));
        let e = EnvConfig::from_vars([("MCP_AUTH_METRICS_LISTEN", ":9464")]).unwrap_err();
        assert!(e.to_string().starts_with("MCP_AUTH_METRICS_LISTEN"), "{e}");
        let c = EnvConfig::from_vars([
            ("MCP_AUTH_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1jaQ"),
            ("MCP_AUTH_AUDIT_LOG", " /var/log/mcp/audit.jsonl "),
        ])
        .unwrap();
        assert_eq!(
            c.audit_log(),
            Some(&AuditDestination::File("/var/log/mcp/audit.jsonl".into()))
        );
    }
}
