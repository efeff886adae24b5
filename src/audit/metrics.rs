//! The metrics: counters, a gauge and a histogram through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`), with Prometheus names.
//!
//! The library depends on the facade only: a program installs the exporter it wants (the
//! examples and the gateway serve `/metrics` with `metrics-exporter-prometheus` on
//! `MCP_AUTH_METRICS_LISTEN`), then calls [`describe`], which describes the metrics to it and
//! **starts the recording**. Until then (and without the `metrics` feature) nothing is
//! recorded and a request pays one relaxed atomic load: the facade cannot tell whether a
//! recorder listens, and counting into its no-op recorder would cost every request a clock
//! read and an allocation for nothing.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `mcp_auth_decisions_total` | counter | `outcome`, `reason`, `scheme`, `layer` | every decision of every layer, as in the [audit events](super) (`reason` is `none` for `allowed`) |
//! | `mcp_auth_verification_seconds` | histogram | | the auth layer's time from a request to its decision (reading the credentials, verifying them, checking scopes) |
//! | `mcp_auth_throttled_total` | counter | | requests refused with `429` by the failed-auth throttle |
//! | `mcp_auth_jwks_fetches_total` | counter | `result` (`ok`, `error`) | fetches of a JWKS |
//! | `mcp_auth_token_cache_hits_total`, `mcp_auth_token_cache_misses_total` | counter | | lookups in the token caches (verified JWTs, introspection answers) |
//! | `mcp_auth_token_cache_entries` | gauge | | entries in the token caches |
//! | `mcp_auth_introspection_calls_total` | counter | `result` (`active`, `inactive`, `error`) | calls to the introspection endpoint |
//! | `mcp_auth_store_errors_total` | counter | | store operations that failed or timed out (throttling then fails open) |
//!
//! ```
//! use mcp_server_auth::audit::metrics;
//! assert_eq!(metrics::DECISIONS_TOTAL, "mcp_auth_decisions_total");
//! // After installing the recorder: HELP texts for the exporter, and the recording starts
//! // (nothing without the `metrics` feature).
//! metrics::describe();
//! ```

use std::{
    sync::atomic::{AtomicBool, AtomicI64, Ordering},
    time::Duration,
};

/// Decisions by outcome, reason, scheme and layer.
pub const DECISIONS_TOTAL: &str = "mcp_auth_decisions_total";
/// The auth layer's verification latency, in seconds.
pub const VERIFICATION_SECONDS: &str = "mcp_auth_verification_seconds";
/// Requests refused by the failed-auth throttle.
pub const THROTTLED_TOTAL: &str = "mcp_auth_throttled_total";
/// JWKS fetches by result.
pub const JWKS_FETCHES_TOTAL: &str = "mcp_auth_jwks_fetches_total";
/// Token cache hits.
pub const TOKEN_CACHE_HITS_TOTAL: &str = "mcp_auth_token_cache_hits_total";
/// Token cache misses.
pub const TOKEN_CACHE_MISSES_TOTAL: &str = "mcp_auth_token_cache_misses_total";
/// Token cache entries.
pub const TOKEN_CACHE_ENTRIES: &str = "mcp_auth_token_cache_entries";
/// Introspection calls by result.
pub const INTROSPECTION_CALLS_TOTAL: &str = "mcp_auth_introspection_calls_total";
/// Failed store operations.
pub const STORE_ERRORS_TOTAL: &str = "mcp_auth_store_errors_total";

/// Whether [`describe`] started the recording.
static RECORDING: AtomicBool = AtomicBool::new(false);
/// Entries in the token caches, kept whether or not the metrics are recorded, so that the gauge
/// is right from the moment the recording starts.
static CACHE_ENTRIES: AtomicI64 = AtomicI64::new(0);

/// Whether the metrics are compiled in and being recorded.
#[inline]
pub(crate) fn on() -> bool {
    cfg!(feature = "metrics") && RECORDING.load(Ordering::Relaxed)
}

/// Registers the description and unit of every metric with the installed recorder (for the
/// `# HELP` lines of a Prometheus scrape) and starts recording them. Call it once, after
/// installing the recorder. Without the `metrics` feature it does nothing.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        RECORDING.store(true, Ordering::Relaxed);
        use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            DECISIONS_TOTAL,
            "Authentication and authorization decisions"
        );
        describe_histogram!(
            VERIFICATION_SECONDS,
            Unit::Seconds,
            "Time from a request to the auth layer's decision"
        );
        describe_counter!(THROTTLED_TOTAL, "Requests refused after too many failures");
        describe_counter!(JWKS_FETCHES_TOTAL, "JWKS fetches");
        describe_counter!(TOKEN_CACHE_HITS_TOTAL, "Token cache hits");
        describe_counter!(TOKEN_CACHE_MISSES_TOTAL, "Token cache misses");
        describe_gauge!(TOKEN_CACHE_ENTRIES, "Entries in the token caches");
        describe_counter!(INTROSPECTION_CALLS_TOTAL, "Token introspection calls");
        describe_counter!(STORE_ERRORS_TOTAL, "Failed store operations");
        metrics::gauge!(TOKEN_CACHE_ENTRIES).set(CACHE_ENTRIES.load(Ordering::Relaxed) as f64);
    }
}

/// A decision (from [`super::Decision::record`]).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn decision(
    layer: super::Layer,
    outcome: super::Outcome,
    reason: Option<&'static str>,
    scheme: Option<crate::credentials::Scheme>,
    latency: Duration,
) {
    #[cfg(feature = "metrics")]
    if on() {
        metrics::counter!(
            DECISIONS_TOTAL,
            "outcome" => outcome.as_str(),
            "reason" => reason.unwrap_or("none"),
            "scheme" => super::scheme_name(scheme),
            "layer" => layer.as_str(),
        )
        .increment(1);
        if outcome == super::Outcome::Throttled {
            metrics::counter!(THROTTLED_TOTAL).increment(1);
        }
        if layer == super::Layer::Auth {
            metrics::histogram!(VERIFICATION_SECONDS).record(latency.as_secs_f64());
        }
    }
}

/// A JWKS fetch.
#[cfg(feature = "remote-jwks")]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn jwks_fetch(ok: bool) {
    #[cfg(feature = "metrics")]
    if on() {
        metrics::counter!(JWKS_FETCHES_TOTAL, "result" => if ok { "ok" } else { "error" })
            .increment(1);
    }
}

/// A token cache lookup.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn cache_lookup(hit: bool) {
    #[cfg(feature = "metrics")]
    if on() {
        if hit {
            metrics::counter!(TOKEN_CACHE_HITS_TOTAL).increment(1);
        } else {
            metrics::counter!(TOKEN_CACHE_MISSES_TOTAL).increment(1);
        }
    }
}

/// Entries added to (positive) or dropped from (negative) a token cache.
pub(crate) fn cache_entries(delta: isize) {
    if delta == 0 {
        return;
    }
    let delta = i64::try_from(delta).unwrap_or(0);
    let now = CACHE_ENTRIES.fetch_add(delta, Ordering::Relaxed) + delta;
    #[cfg(feature = "metrics")]
    if on() {
        metrics::gauge!(TOKEN_CACHE_ENTRIES).set(now as f64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = now;
}

/// A call to the introspection endpoint: `active`, `inactive` or `error`.
#[cfg(feature = "introspection")]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn introspection_call(result: &'static str) {
    #[cfg(feature = "metrics")]
    if on() {
        metrics::counter!(INTROSPECTION_CALLS_TOTAL, "result" => result).increment(1);
    }
}

/// A store operation that failed or timed out.
pub(crate) fn store_error() {
    #[cfg(feature = "metrics")]
    if on() {
        metrics::counter!(STORE_ERRORS_TOTAL).increment(1);
    }
}
