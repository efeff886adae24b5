//! An MCP server (rmcp, streamable HTTP) at `/mcp`, protected by a bearer token.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Configuration, all optional (see `mcp_server_auth::config`):
//! `MCP_AUTH_LISTEN` (default `127.0.0.1:8080`), `MCP_AUTH_RESOURCE_URL` (the public URL of
//! `/mcp`), `MCP_AUTH_BEARER_TOKEN`, `MCP_AUTH_BEARER_TOKENS` (`name:token,...`),
//! `MCP_AUTH_USER` + `MCP_AUTH_PASSWORD` (HTTP Basic), `MCP_AUTH_REALM`.
//! With no token and no user configured, a random token is generated and printed.

use std::sync::Arc;

use axum::Router;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_server_auth::{config::EnvConfig, rmcp::Caller};
use rmcp::{
    tool, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};

/// The MCP server: one tool.
#[derive(Debug, Clone, Default)]
struct Server;

#[tool_router(server_handler)]
impl Server {
    #[tool(description = "Returns who you are, as the server sees it")]
    async fn whoami(&self, Caller(who): Caller) -> String {
        serde_json::json!({
            "subject": who.subject(),
            "method": who.method().as_str(),
            "scopes": who.scopes().iter().collect::<Vec<_>>(),
            "client_id": who.client_id(),
        })
        .to_string()
    }
}

#[tokio::main]
async fn main() {
    let mut config = EnvConfig::from_env().unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let url = config.resource_url().as_str().to_owned();

    if config.has_credentials() {
        // Configured secrets are never printed: only their names.
        let mut names: Vec<String> = config.bearer_token_names().map(str::to_owned).collect();
        names.extend(config.basic_user().map(str::to_owned));
        names.extend(config.issuer().map(|iss| format!("JWTs from {iss}")));
        println!("MCP server at {url}, accepting: {}", names.join(", "));
    } else {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        config.add_bearer_token("generated", &token);
        print_connection_help(&url, &token);
    }
    let layer = config.layer().await.unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });

    // rmcp checks the Host header (DNS rebinding protection): allow the resource URL's host.
    let mut mcp_config = StreamableHttpServerConfig::default();
    let host = config
        .resource_url()
        .host()
        .trim_matches(['[', ']'])
        .to_owned();
    mcp_config.allowed_hosts.push(host);
    let shutdown = mcp_config.cancellation_token.clone();

    let mcp = StreamableHttpService::new(
        || Ok(Server),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    let app = Router::new().nest_service("/mcp", mcp).layer(layer);

    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}: {e}", config.listen());
            std::process::exit(1);
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            println!("shutting down");
            // Ends rmcp's open sessions and event streams, so that connections can close.
            shutdown.cancel();
        })
        .await
        .unwrap();
}

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
