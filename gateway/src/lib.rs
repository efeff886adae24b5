//! `mcp-auth-gateway`: any MCP server, stdio or HTTP, in any language, behind the
//! authentication and authorization of [`mcp_server_auth`], with one command.
//!
//! Most MCP servers in use are stdio programs written in TypeScript or Python; their owners
//! cannot add a Rust layer, yet need exactly what the library does. `mcp-auth-gateway wrap --
//! CMD [ARGS…]` runs such a server behind the library's stack and serves it as MCP Streamable
//! HTTP; `mcp-auth-gateway proxy UPSTREAM_URL` puts the same stack in front of a server that
//! already speaks Streamable HTTP. It is a thin program over the library's public API; this library target exists so
//! that its parts are documented and tested on their own.
//!
//! The data flow, one module per step:
//!
//! | step | module |
//! |---|---|
//! | the command line | [`cli`] |
//! | who may call: `MCP_AUTH_*` (and flyctl's aliases), no credentials only on loopback | [`auth`] |
//! | the stack (Origin → auth → session binding → per-tool scopes → bridge), serving, signals | [`wrap`] |
//! | Streamable HTTP: `POST`, `GET`, `DELETE`, JSON or event streams | [`http`] |
//! | sessions: owner, idle timeout | [`session`] |
//! | MCP 2026-07-28 without sessions: the principal's child, initialized by the gateway, `server/discover` | [`stateless`] |
//! | the child's requests to a 2026-07-28 client: `input_required`, the call waiting for the retry | [`mrtr`] |
//! | the child's list changes and resource updates for 2026-07-28 clients: `subscriptions/listen` streams, filtered, bounded | [`listen`], [`taps`] |
//! | children: who shares one (`--isolation`), one handshake each, `--max-children`, restarts | [`pool`] |
//! | routing JSON-RPC messages between exchanges and the child | [`bridge`], [`message`] |
//! | one message per line, bounded | [`framing`] |
//! | the child process: no shell, no credentials, its own process group | [`child`] |
//! | `proxy`: the stack in front of an HTTP upstream, streamed both ways | [`proxy`] |
//! | the log, the audit trail (`MCP_AUTH_AUDIT_LOG`) and metrics (`MCP_AUTH_METRICS_LISTEN`) | [`telemetry`] |
//!
//! ```no_run
//! use clap::Parser;
//! use mcp_auth_gateway::cli::{Cli, Commands};
//!
//! # async fn run() {
//! match Cli::parse().command {
//!     Commands::Wrap(args) => mcp_auth_gateway::wrap::run(args).await.unwrap(),
//!     Commands::Proxy(args) => mcp_auth_gateway::proxy::run(args).await.unwrap(),
//! }
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod bridge;
pub mod child;
pub mod cli;
pub mod framing;
pub mod http;
pub mod listen;
pub mod message;
pub mod mrtr;
pub mod pool;
pub mod proxy;
pub mod reshape;
pub mod session;
pub mod stateless;
pub mod taps;
pub mod telemetry;
pub mod wrap;
