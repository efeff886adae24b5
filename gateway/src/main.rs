//! `mcp-auth-gateway`: see the library documentation of the `mcp_auth_gateway` crate.

#![forbid(unsafe_code)]

use clap::Parser;
use mcp_auth_gateway::{
    cli::{Cli, Commands},
    telemetry::Telemetry,
};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = Telemetry::from_env().and_then(Telemetry::install) {
        eprintln!("mcp-auth-gateway: {e}");
        std::process::exit(2);
    }
    let result = match cli.command {
        Commands::Wrap(args) => mcp_auth_gateway::wrap::run(args).await,
        Commands::Proxy(args) => mcp_auth_gateway::proxy::run(args).await,
    };
    if let Err(e) = result {
        eprintln!("mcp-auth-gateway: {e}");
        std::process::exit(2);
    }
}
