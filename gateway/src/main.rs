//! `mcp-auth-gateway`: see the library documentation of the `mcp_auth_gateway` crate.

#![forbid(unsafe_code)]

use clap::Parser;
use mcp_auth_gateway::cli::{Cli, Commands};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let result = match cli.command {
        Commands::Wrap(args) => mcp_auth_gateway::wrap::run(args).await,
        Commands::Proxy(args) => mcp_auth_gateway::proxy::run(args).await,
    };
    if let Err(e) = result {
        eprintln!("mcp-auth-gateway: {e}");
        std::process::exit(2);
    }
}
