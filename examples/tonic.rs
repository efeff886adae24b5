//! A tonic gRPC server (the standard gRPC health service) behind the auth layer.
//!
//! ```sh
//! MCP_AUTH_BEARER_TOKEN=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=') \
//!   cargo run --example tonic
//! grpcurl -plaintext -H "authorization: Bearer $MCP_AUTH_BEARER_TOKEN" \
//!   127.0.0.1:8080 grpc.health.v1.Health/Check
//! ```
//!
//! Without a valid token every call fails with `UNAUTHENTICATED` (and `www-authenticate`
//! metadata); in your own gRPC methods, read the caller with
//! `mcp_server_auth::tonic::TonicRequestExt::auth_info(&request)`.

use mcp_server_auth::config::EnvConfig;
use tonic::transport::Server;

#[tokio::main]
async fn main() {
    let config = EnvConfig::from_env().unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    if !config.has_credentials() {
        eprintln!("set MCP_AUTH_BEARER_TOKEN (or MCP_AUTH_BEARER_TOKENS)");
        std::process::exit(2);
    }
    let auth = config.layer().await.unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });

    let (_reporter, health) = tonic_health::server::health_reporter();

    println!("gRPC on {}", config.listen());
    Server::builder()
        .layer(auth)
        .add_service(health)
        .serve_with_shutdown(config.listen(), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .unwrap();
}
