//! The command line: `mcp-auth-gateway wrap [OPTIONS] -- CMD [ARGS…]` and
//! `mcp-auth-gateway proxy [OPTIONS] UPSTREAM_URL`.
//!
//! Options take durations as `500ms`, `30s`, `10m`, `1h` (a bare number is seconds) and sizes
//! as bytes with an optional `KiB`, `MiB` or `GiB` (`16MiB`), so that limits read as what they
//! mean.
//!
//! ```
//! use clap::Parser;
//! use mcp_auth_gateway::cli::{Cli, Commands};
//! let cli = Cli::try_parse_from(["mcp-auth-gateway", "wrap", "--idle-timeout", "90s", "--",
//!     "npx", "-y", "@modelcontextprotocol/server-everything"]).unwrap();
//! let Commands::Wrap(wrap) = cli.command else { unreachable!() };
//! assert_eq!(wrap.idle_timeout.as_secs(), 90);
//! assert_eq!(wrap.command, ["npx", "-y", "@modelcontextprotocol/server-everything"]);
//! ```

use std::{ffi::OsString, net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand};

/// Put an MCP server behind authentication and authorization (mcp-server-auth).
///
/// Credentials and policy come from MCP_AUTH_* variables (the library's; FLY_MCP_BEARER_TOKEN,
/// FLY_MCP_USER and FLY_MCP_PASSWORD are accepted as aliases). Without any, on a loopback
/// address a token is generated and printed; on any other address the gateway refuses to
/// start.
#[derive(Debug, Parser)]
#[command(name = "mcp-auth-gateway", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Serve a stdio MCP server as MCP Streamable HTTP (by default one process per MCP
    /// session: see --isolation).
    Wrap(WrapArgs),
    /// Put an MCP server that already speaks Streamable HTTP behind the same front door.
    Proxy(ProxyArgs),
}

/// Who shares a server process under `wrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Isolation {
    /// One process per MCP session, ended with it.
    #[default]
    Session,
    /// One process per authenticated principal, shared by that principal's sessions only.
    Principal,
    /// One process for everyone (request ids and progress tokens are rewritten so that no
    /// client sees another's answers); restarted with backoff when it exits.
    Shared,
}

/// `wrap`'s options.
#[derive(Debug, Args)]
pub struct WrapArgs {
    /// The address to listen on [default: MCP_AUTH_LISTEN, else 127.0.0.1:8080]. Port 0 picks
    /// a free port (the URL is printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// The path of the MCP endpoint.
    #[arg(long, default_value = "/mcp", value_parser = parse_path)]
    pub path: String,

    /// Who shares a server process: `session` (one each), `principal` (one per authenticated
    /// user, never shared between users) or `shared` (one for everyone).
    #[arg(long, value_enum, default_value_t = Isolation::Session)]
    pub isolation: Isolation,

    /// End a session after this long without a request; a process with no session left
    /// ends with it (`shared`: the process stays).
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// The most server processes at once; a session that would need one more gets 503.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_children: u32,

    /// The largest message in either direction; a larger line from the server ends its
    /// session, a larger request gets 413.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_bytes: usize,

    /// How long a server process has to exit after SIGTERM before its process group is
    /// killed.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub kill_grace: Duration,

    /// How long a call of an MCP 2026-07-28 client waits for the client's input (the server
    /// asked for sampling, elicitation or roots) before it is cancelled.
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub input_timeout: Duration,

    /// The stdio MCP server to run, and its arguments (run directly, without a shell).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `proxy`'s options.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The address to listen on [default: MCP_AUTH_LISTEN, else 127.0.0.1:8080]. Port 0 picks
    /// a free port (the URL is printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// The path of the MCP endpoint.
    #[arg(long, default_value = "/mcp", value_parser = parse_path)]
    pub path: String,

    /// Forget who owns a session after this long without a request (the client then gets 404
    /// and opens a new session).
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// The largest request body read to check per-tool scopes (MCP_AUTH_TOOL_SCOPES); a
    /// larger one gets 413. Bodies are otherwise streamed, not read.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_bytes: usize,

    /// How long connecting to the upstream may take before the client gets 502.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Do not tell the upstream who the caller is (no X-MCP-Auth-Subject, X-MCP-Auth-Scopes,
    /// X-MCP-Auth-Client-Id, X-MCP-Auth-Issuer). Such headers from clients are removed
    /// either way.
    #[arg(long)]
    pub no_identity_headers: bool,

    /// The upstream MCP endpoint, e.g. http://127.0.0.1:3000/mcp.
    #[arg(value_name = "UPSTREAM_URL", value_parser = parse_upstream)]
    pub upstream: reqwest::Url,
}

/// Checks that an upstream URL is `http` or `https` with a host and no credentials.
pub fn parse_upstream(value: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| format!("{value:?} is not a URL such as http://127.0.0.1:3000/mcp ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{value:?}: the upstream must be an http:// or https:// URL"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("the upstream URL must not hold credentials or a fragment".to_owned());
    }
    Ok(url)
}

/// Parses `500ms`, `30s`, `10m`, `1h` or a bare number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration such as 30s, 10m or 1h"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{value:?}: use the units ms, s, m or h")),
    };
    if d.is_zero() {
        return Err("the duration must be more than zero".to_owned());
    }
    Ok(d)
}

/// Parses a number of bytes with an optional `KiB`, `MiB` or `GiB`.
pub fn parse_size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{value:?} is not a size such as 1048576 or 16MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("{value:?}: use the units KiB, MiB or GiB")),
    };
    match n.checked_mul(factor) {
        Some(0) | None => Err(format!("{value:?} is not a usable size")),
        Some(n) => Ok(n),
    }
}

/// Checks that a path starts with `/` and has no query or fragment.
pub fn parse_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') && !value.contains(['?', '#', ' ']) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?}: the path must start with / (for example /mcp)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_paths() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err() && parse_duration("1d").is_err());
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("1MB").is_err() && parse_size("0").is_err());
        assert!(parse_path("/mcp").is_ok() && parse_path("mcp").is_err());
    }

    #[test]
    fn the_command_comes_after_the_double_dash() {
        assert!(Cli::try_parse_from(["mcp-auth-gateway", "wrap"]).is_err());
        let cli = Cli::try_parse_from(["g", "wrap", "--", "server", "--listen", "x"]).unwrap();
        let Commands::Wrap(w) = cli.command else {
            unreachable!()
        };
        assert_eq!(w.command, ["server", "--listen", "x"]);
        assert_eq!(w.isolation, Isolation::Session);
        assert_eq!(w.listen, None);
        assert_eq!(w.max_children, 64);
        assert_eq!(w.max_message_bytes, 16 << 20);
    }

    #[test]
    fn proxy_takes_an_http_upstream_without_credentials() {
        let cli = Cli::try_parse_from(["g", "proxy", "http://127.0.0.1:3000/mcp"]).unwrap();
        let Commands::Proxy(p) = cli.command else {
            unreachable!()
        };
        assert_eq!(p.upstream.as_str(), "http://127.0.0.1:3000/mcp");
        assert!(!p.no_identity_headers);
        for bad in ["ftp://h/mcp", "http://u:p@h/mcp", "/mcp", "http://h/mcp#x"] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }
}
