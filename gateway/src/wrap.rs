//! `wrap`: the library's stack in front of the bridge, served until a signal.
//!
//! The stack is the example server's, outermost first: Origin check
//! ([`OriginLayer`], against DNS rebinding) → failed-authentication throttling
//! ([`EnvConfig::throttle_layer`]: `429` once a client address has failed
//! `MCP_AUTH_FAILURE_LIMIT` times in the window; counted in Redis with `MCP_AUTH_REDIS_URL`, so
//! that replicas count together) → authentication ([`EnvConfig::layer`], which also
//! serves the Protected Resource Metadata when one is configured) → session binding
//! ([`SessionBindingLayer`]: a session belongs to whoever opened it) → per-tool scopes
//! ([`McpScopeLayer`](mcp_server_auth::mcp::McpScopeLayer), from `MCP_AUTH_TOOL_SCOPES`) →
//! the bridge. The scope layer always reads the JSON-RPC body
//! ([`verify_headers`](mcp_server_auth::mcp::McpScopeLayer::verify_headers)): the child
//! behind a stdio pipe never sees the `Mcp-Method` / `Mcp-Name` headers, so it cannot check
//! that they match the body, and a decision made on headers alone could be lied to.
//!
//! On `SIGTERM` or `SIGINT` the gateway stops accepting connections, ends every session (its
//! waiting requests get an error, its streams end), gives each child `--kill-grace` to exit
//! before its process group is killed, waits for them all, and exits.
//!
//! ```no_run
//! # async fn run(args: mcp_auth_gateway::cli::WrapArgs) {
//! if let Err(e) = mcp_auth_gateway::wrap::run(args).await {
//!     eprintln!("mcp-auth-gateway: {e}");
//! }
//! # }
//! ```

use std::time::Duration;

use axum::Router;
use mcp_server_auth::{config::EnvConfig, origin::OriginLayer, session::SessionBindingLayer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, StartError},
    bridge::Limits,
    child::Command,
    cli::WrapArgs,
    http::{self, Gateway},
    mrtr::Waiting,
    pool::PoolConfig,
    session::Sessions,
};

/// How long open connections may take to finish after a signal, beyond the children's grace.
const DRAIN: Duration = Duration::from_secs(5);

/// `inner` (the MCP endpoint: the bridge here, a reverse proxy in a later mode) behind the
/// library's layers, as configured by `config`. Bodies read to check per-tool scopes are
/// limited to `max_message_bytes`; session bindings are forgotten after `idle_timeout`.
pub async fn protect(
    inner: Router,
    config: &EnvConfig,
    max_message_bytes: usize,
    idle_timeout: Duration,
) -> Result<Router, StartError> {
    let mut router = inner;
    let auth = config.layer().await?;
    if let Some(scopes) = config.tool_scopes() {
        let scopes = auth
            .mcp_scopes(scopes.clone())
            .verify_headers(true)
            .max_body_bytes(max_message_bytes);
        router = router.layer(scopes);
    }
    let binding = SessionBindingLayer::builder()
        .idle_timeout(idle_timeout)
        .build();
    let throttle = config.throttle_layer().await?;
    let origin = OriginLayer::new(config.allowed_origins().clone());
    Ok(router
        .layer(binding)
        .layer(auth)
        .layer(throttle)
        .layer(origin))
}

/// The protected app of `wrap`: the bridge's endpoint at `path` behind [`protect`]; a call
/// of an MCP 2026-07-28 client waits at most `input_timeout` for the client's input
/// ([`crate::mrtr`]).
pub async fn app(
    config: &EnvConfig,
    sessions: Sessions,
    path: &str,
    max_message_bytes: usize,
    idle_timeout: Duration,
    input_timeout: Duration,
) -> Result<Router, StartError> {
    let gateway = Gateway {
        sessions,
        max_message_bytes,
        waiting: Waiting::new(input_timeout),
    };
    let endpoint = http::router(gateway, path);
    protect(endpoint, config, max_message_bytes, idle_timeout).await
}

/// Runs `wrap` until `SIGTERM` or `SIGINT`.
pub async fn run(args: WrapArgs) -> Result<(), StartError> {
    serve(args, shutdown_on_signal()).await
}

/// A token cancelled on the first `SIGTERM` or `SIGINT`.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    shutdown
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop the gateway with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// A bound listener and the auth configuration for its address.
#[derive(Debug)]
pub struct Bound {
    /// The listener.
    pub listener: TcpListener,
    /// The configuration (`MCP_AUTH_*`, flyctl's aliases), with credentials.
    pub config: EnvConfig,
    /// The token generated because none was configured (loopback only), to print.
    pub generated: Option<String>,
}

/// Reads the configuration from the environment and binds `--listen` (else
/// `MCP_AUTH_LISTEN`, else `127.0.0.1:8080`): refused, binding nothing, without credentials on
/// an address other than loopback; on loopback without credentials, a token is generated.
pub async fn bind(listen: Option<std::net::SocketAddr>, path: &str) -> Result<Bound, StartError> {
    let vars: Vec<_> = std::env::vars_os().collect();
    let listen = auth::listen_addr(listen, &auth::auth_vars(vars.clone())?)?;
    // Checked before binding, so that a refused start binds nothing.
    let preview = auth::env_config(vars.clone(), listen, path)?;
    if !preview.has_credentials() && !listen.ip().is_loopback() {
        return Err(StartError::NoCredentials(listen));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Bind(listen, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Bind(listen, e))?;
    let mut config = auth::env_config(vars, bound, path)?;
    let generated = auth::ensure_credentials(&mut config, bound)?;
    Ok(Bound {
        listener,
        config,
        generated,
    })
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, runs `stopping` (which
/// should end long-lived streams) and gives open connections `drain` to finish.
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    stopping: impl FnOnce() + Send + 'static,
    drain: Duration,
) {
    let signalled = shutdown.clone();
    let graceful = async move {
        signalled.cancelled().await;
        stopping();
    };
    // The peer address goes into each request: the throttle counts clients by it.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(graceful);
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        result = server => if let Err(e) = result {
            tracing::error!("the server failed: {e}");
        },
        () = deadline => tracing::warn!("connections still open after the grace period; closing them"),
    }
}

/// Runs `wrap` until `shutdown` is cancelled.
pub async fn serve(args: WrapArgs, shutdown: CancellationToken) -> Result<(), StartError> {
    let mut command = args.command.into_iter();
    let program = command.next().ok_or(StartError::Command(String::new()))?;
    let command = Command::new(program, command);
    if !command.exists() {
        return Err(StartError::Command(
            command.program().to_string_lossy().into_owned(),
        ));
    }
    let Bound {
        listener,
        config,
        generated,
    } = bind(args.listen, &args.path).await?;
    auth::reload_tokens_on_hangup(&config);

    let sessions = Sessions::new(PoolConfig {
        command,
        isolation: args.isolation,
        max_children: args.max_children as usize,
        idle_timeout: args.idle_timeout,
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            grace: args.kill_grace,
        },
    });
    let app = app(
        &config,
        sessions.clone(),
        &args.path,
        args.max_message_bytes,
        args.idle_timeout,
        args.input_timeout,
    )
    .await?;
    auth::print_connection_help(&config, generated.as_deref());

    let ending = sessions.clone();
    // `close_all` ends every stream, so that connections can close.
    let stopping = move || ending.close_all();
    serve_app(listener, app, shutdown, stopping, args.kill_grace + DRAIN).await;
    sessions.shutdown(args.kill_grace + DRAIN).await;
    tracing::info!("stopped");
    Ok(())
}
