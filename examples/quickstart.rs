//! An MCP server (rmcp, streamable HTTP) at `/mcp` with three tools, protected by this crate:
//! `whoami` (any authenticated caller), `echo` (needs `mcp:read`) and `write_note` (needs
//! `mcp:write`).
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Configuration, all optional (see `mcp_server_auth::config`): `MCP_AUTH_LISTEN` (default
//! `127.0.0.1:8080`), `MCP_AUTH_RESOURCE_URL` (the public URL of `/mcp`),
//! `MCP_AUTH_BEARER_TOKEN`, `MCP_AUTH_BEARER_TOKENS` (`name:token,...`),
//! `MCP_AUTH_BEARER_TOKEN_SCOPES` (`name=scope scope,...`), or instead of these three
//! `MCP_AUTH_BEARER_TOKENS_FILE` (a file of `name:token [scope ...]` lines, reloaded when it
//! changes and on `SIGHUP`), `MCP_AUTH_USER` +
//! `MCP_AUTH_PASSWORD` (HTTP Basic) with `MCP_AUTH_USER_SCOPES`, `MCP_AUTH_REALM`, `MCP_AUTH_ISSUER_URL` /
//! `MCP_AUTH_JWKS_URL` (JWT mode, with the other `MCP_AUTH_*` JWT variables),
//! `MCP_AUTH_TOOL_SCOPES` (per-tool scopes; in JWT mode the default is
//! `echo=mcp:read,write_note=mcp:write`), `MCP_AUTH_ALLOWED_ORIGINS`, and failed-auth throttling:
//! `MCP_AUTH_FAILURE_LIMIT` (default 20 failures per client per window, `0` turns it off),
//! `MCP_AUTH_FAILURE_WINDOW_SECS` (default 60), `MCP_AUTH_TRUSTED_PROXIES` (CIDRs of reverse
//! proxies whose `X-Forwarded-For` names the client) and `MCP_AUTH_REDIS_URL` (counts shared by
//! replicas in Redis or Valkey; feature `redis`). Operations: `MCP_AUTH_AUDIT_LOG` (`stderr`,
//! `stdout` or a file path: one JSON line per decision, the file reopened on `SIGHUP`) and
//! `MCP_AUTH_METRICS_LISTEN` (Prometheus metrics at `/metrics` on that separate address).
//! With no token, user or issuer configured, a random token is generated and printed.
//!
//! The stack, outermost first: Origin check → failed-auth throttling → authentication → session
//! binding (an MCP session belongs to whoever opened it) → per-tool scopes → MCP service. The
//! server is served with the peer address in each request (`ConnectInfo`), which the
//! throttle counts by.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::Router;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_server_auth::{
    audit::{self, log::AuditLog},
    config::{ConfigError, EnvConfig},
    mcp::OperationScopes,
    origin::OriginLayer,
    rmcp::Caller,
    session::SessionBindingLayer,
};
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{
    Layer, filter::Targets, fmt::MakeWriter, layer::SubscriberExt, registry::LookupSpan,
};

/// The arguments of `echo` and `write_note`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct TextArgs {
    /// The text.
    pub text: String,
}

/// The MCP server: three tools, sharing one notebook. The tool router (with the tools' JSON
/// schemas) is built once and shared, not rebuilt for every request.
#[derive(Debug, Clone)]
pub struct Server {
    notes: Arc<Mutex<Vec<String>>>,
    tools: Arc<ToolRouter<Server>>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            notes: Arc::default(),
            tools: Arc::new(Self::tool_router()),
        }
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for Server {}

#[tool_router]
impl Server {
    #[tool(description = "Returns who you are, as the server sees it: subject, scopes, client id")]
    async fn whoami(&self, Caller(who): Caller) -> String {
        serde_json::json!({
            "subject": who.subject(),
            "method": who.method().as_str(),
            "scopes": who.scopes().iter().collect::<Vec<_>>(),
            "client_id": who.client_id(),
        })
        .to_string()
    }

    #[tool(description = "Returns the text it is given (needs scope mcp:read)")]
    async fn echo(&self, Parameters(args): Parameters<TextArgs>) -> String {
        args.text
    }

    #[tool(description = "Saves a note (needs scope mcp:write)")]
    async fn write_note(
        &self,
        Parameters(args): Parameters<TextArgs>,
        Caller(who): Caller,
    ) -> String {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        notes.push(args.text);
        format!("note {} saved for {}", notes.len(), who.subject())
    }
}

/// The unprotected MCP service at `/mcp`, and the token that ends its sessions and streams.
pub fn mcp_router(config: &EnvConfig) -> (Router, CancellationToken) {
    // rmcp checks the Host header (DNS rebinding protection): allow the resource URL's host.
    let mut mcp_config = StreamableHttpServerConfig::default();
    let host = config
        .resource_url()
        .host()
        .trim_matches(['[', ']'])
        .to_owned();
    mcp_config.allowed_hosts.push(host);
    let shutdown = mcp_config.cancellation_token.clone();
    let server = Server::default();
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    (Router::new().nest_service("/mcp", mcp), shutdown)
}

/// The per-tool scopes in JWT mode when `MCP_AUTH_TOOL_SCOPES` is not set.
pub const DEFAULT_TOOL_SCOPES: &str = "echo=mcp:read,write_note=mcp:write";

/// The configuration with the example's defaults: in JWT mode, when `MCP_AUTH_TOOL_SCOPES` is
/// not set, [`DEFAULT_TOOL_SCOPES`] (which the metadata then advertises). Without JWTs the tools
/// are open to every authenticated caller unless `MCP_AUTH_TOOL_SCOPES` says otherwise (static
/// tokens and the Basic user then hold the scopes of `MCP_AUTH_BEARER_TOKEN_SCOPES` and
/// `MCP_AUTH_USER_SCOPES`).
pub fn with_defaults(config: &EnvConfig) -> Result<EnvConfig, ConfigError> {
    let mut config = config.clone();
    if config.tool_scopes().is_none() && config.issuer().is_some() {
        config.set_tool_scopes(OperationScopes::parse(DEFAULT_TOOL_SCOPES)?);
    }
    Ok(config)
}

/// The example server: the MCP service with the protection the configuration asks for.
/// Outermost first: Origin check → failed-auth throttling → authentication → session binding →
/// per-tool scopes → MCP service. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so that the throttle counts each client apart.
pub async fn app(config: &EnvConfig) -> Result<(Router, CancellationToken), ConfigError> {
    let config = with_defaults(config)?;
    let (mut router, shutdown) = mcp_router(&config);
    let auth = config.layer().await?;
    if let Some(scopes) = config.tool_scopes() {
        router = router.layer(auth.mcp_scopes(scopes.clone()));
    }
    // A session id is no credential: another caller who learns it gets 404, not the session.
    let router = router.layer(SessionBindingLayer::new());
    let origin = OriginLayer::new(config.allowed_origins().clone());
    let throttle = config.throttle_layer().await?;
    Ok((router.layer(auth).layer(throttle).layer(origin), shutdown))
}

/// The audit events (target `mcp_server_auth::audit`, and nothing else) as JSON lines, one per
/// decision, its fields at the top level, to `writer`.
pub fn audit_layer<S, W>(writer: W) -> impl Layer<S>
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

/// What `MCP_AUTH_AUDIT_LOG` and `MCP_AUTH_METRICS_LISTEN` ask for: the audit log (its file
/// reopened on `SIGHUP`) and the Prometheus endpoint. Call it once, in the tokio runtime.
pub fn telemetry(config: &EnvConfig) -> Result<(), String> {
    // Warnings and errors (a token file that fails to reload, Redis down) to stderr; the
    // audit events only to their own destination.
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target(audit::TARGET, tracing::level_filters::LevelFilter::OFF),
        );
    let audit = match config.audit_log() {
        Some(destination) => {
            let log = AuditLog::open(destination).map_err(|e| e.to_string())?;
            log.reopen_on_sighup()
                .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
            Some(audit_layer(move || log.writer()))
        }
        None => None,
    };
    let subscriber = tracing_subscriber::registry().with(log).with(audit);
    tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())?;
    if let Some(listen) = config.metrics_listen() {
        use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
        PrometheusBuilder::new()
            .with_http_listener(listen)
            .set_buckets_for_metric(
                Matcher::Full(audit::metrics::VERIFICATION_SECONDS.to_owned()),
                &[1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0],
            )
            .and_then(PrometheusBuilder::install)
            .map_err(|e| format!("metrics on {listen}: {e}"))?;
        audit::metrics::describe();
    }
    Ok(())
}

/// Reloads the token file of `MCP_AUTH_BEARER_TOKENS_FILE` on every `SIGHUP` (`kill -HUP`),
/// besides the watcher that follows its changes. Its own signal loop: other uses of `SIGHUP`
/// (reopening a log) install theirs, and each gets every signal.
#[cfg(unix)]
pub fn reload_tokens_on_hangup(config: &EnvConfig) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(tokens) = config.bearer_tokens_file().cloned() else {
        return Ok(());
    };
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // A small file read. Logs the outcome itself; a file that fails to parse keeps the
            // tokens in use.
            let _ = tokens.reload();
        }
    });
    Ok(())
}

#[allow(dead_code)] // Tests include this file as a module and call `app`.
#[tokio::main]
pub async fn main() {
    let mut config = EnvConfig::from_env().unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    if let Err(e) = telemetry(&config) {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    }
    let url = config.resource_url().as_str().to_owned();

    if config.has_credentials() {
        // Configured secrets are never printed: only their names.
        let mut names: Vec<String> = config.bearer_token_names().map(str::to_owned).collect();
        if let Some(file) = config.bearer_tokens_file() {
            let path = file.path().unwrap_or(std::path::Path::new("")).display();
            names.push(format!("the {} tokens of {path}", file.len()));
        }
        names.extend(config.basic_user().map(str::to_owned));
        // `EnvConfig` refuses an issuer URL with user information (`user:password@`).
        names.extend(config.issuer().map(|iss| format!("JWTs from {iss}")));
        if config.introspection_enabled() {
            names.push("opaque tokens (RFC 7662 introspection)".to_owned());
        }
        println!("MCP server at {url}, accepting: {}", names.join(", "));
        if let Some(scopes) = with_defaults(&config)
            .ok()
            .as_ref()
            .and_then(EnvConfig::tool_scopes)
        {
            let mut tools: Vec<String> = scopes
                .tools()
                .map(|(tool, r)| format!("{tool} needs {}", r.challenge_scopes()))
                .collect();
            tools.sort();
            println!("Per-tool scopes: {}", tools.join("; "));
        }
    } else {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        config.add_bearer_token("generated", &token);
        print_connection_help(&url, &token);
    }
    let (app, shutdown) = app(&config).await.unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    #[cfg(unix)]
    if let Err(e) = reload_tokens_on_hangup(&config) {
        eprintln!("cannot listen for SIGHUP ({e}); the token file is still watched");
    }

    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}: {e}", config.listen());
            std::process::exit(1);
        });
    if config.failure_limit() > 0 {
        println!(
            "Failed-auth throttling: {} failures per client per {} s, counted {}",
            config.failure_limit(),
            config.failure_window().as_secs(),
            if config.redis_enabled() {
                "in Redis"
            } else {
                "in memory"
            },
        );
    }
    // The peer address goes into each request: the throttle counts clients by it.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
        // Ends rmcp's open sessions and event streams, so that connections can close.
        shutdown.cancel();
    })
    .await
    .unwrap();
}

#[allow(dead_code)]
fn print_connection_help(url: &str, token: &str) {
    let client_config = serde_json::json!({
        "mcpServers": {
            "example": {
                "type": "http",
                "url": url,
                "headers": { "Authorization": format!("Bearer {token}") }
            }
        }
    });
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}"#;
    println!("MCP server at {url}");
    println!();
    println!("Generated bearer token (valid until the server stops):");
    println!("  {token}");
    println!();
    println!("Client configuration (Claude Desktop, VS Code, ...):");
    println!("{}", serde_json::to_string_pretty(&client_config).unwrap());
    println!();
    println!("Try it:");
    println!(
        "  curl -i {url} -H 'Authorization: Bearer {token}' \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
         -d '{initialize}'"
    );
    println!();
}
