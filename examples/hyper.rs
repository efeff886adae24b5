//! The auth layer around a bare hyper 1 service, without axum.
//!
//! ```sh
//! MCP_AUTH_BEARER_TOKEN=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=') \
//!   cargo run --example hyper
//! curl -i http://127.0.0.1:8080/ -H "Authorization: Bearer $MCP_AUTH_BEARER_TOKEN"
//! ```
//!
//! The same `MCP_AUTH_*` variables as the quickstart configure it.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use mcp_server_auth::{AuthInfo, config::EnvConfig};
use tower::{Layer, service_fn};

/// The protected service: answers the caller's subject.
async fn hello(req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    // The layer only calls this service for authenticated requests, so the identity is there.
    let who = AuthInfo::from_extensions(req.extensions()).map_or("nobody", AuthInfo::subject);
    Ok(http::Response::new(Full::new(Bytes::from(format!(
        "hello {who}\n"
    )))))
}

#[tokio::main]
async fn main() {
    let config = EnvConfig::from_env().unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    if !config.has_credentials() {
        eprintln!("set MCP_AUTH_BEARER_TOKEN (or MCP_AUTH_USER and MCP_AUTH_PASSWORD)");
        std::process::exit(2);
    }
    let layer = config.layer().await.unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let service = layer.layer(service_fn(hello));

    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .unwrap();
    println!("listening on http://{}", config.listen());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        // hyper calls a `hyper::service::Service`; this adapter turns the tower service into one.
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            // HTTP/1.1 and HTTP/2, whichever the client speaks.
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection: {e}");
            }
        });
    }
}
