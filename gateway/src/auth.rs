//! Who may call the gateway: the library's `MCP_AUTH_*` configuration, plus flyctl's
//! variables as aliases, and the rule for running without credentials.
//!
//! The gateway is configured exactly as the library's example server is
//! ([`EnvConfig`]: static tokens with scopes, Basic, JWT, introspection, proxy assertions,
//! per-tool scopes, allowed origins), so that a variable means the same thing everywhere.
//! Users of `fly mcp wrap` keep their secrets: `FLY_MCP_BEARER_TOKEN`, `FLY_MCP_USER` and
//! `FLY_MCP_PASSWORD` stand for `MCP_AUTH_BEARER_TOKEN`, `MCP_AUTH_USER` and
//! `MCP_AUTH_PASSWORD`. Setting both names of one variable is refused, since one of them
//! would be silently ignored.
//!
//! Without credentials, the gateway does what the example server does on a loopback address:
//! generates a token and prints it with a client configuration ([`print_connection_help`]).
//! On any other address it refuses to start ([`StartError::NoCredentials`]): an MCP server
//! reachable from the network with no authentication is what this program exists to prevent.
//!
//! ```
//! use mcp_auth_gateway::auth::env_config;
//! let vars = [("FLY_MCP_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1mbHktdXNlcnM")];
//! let addr = "127.0.0.1:8080".parse().unwrap();
//! let config = env_config(vars.map(|(k, v)| (k.into(), v.into())), addr, "/mcp").unwrap();
//! assert_eq!(config.bearer_token_names().collect::<Vec<_>>(), ["default"]);
//! ```

use std::{
    collections::HashMap,
    ffi::OsString,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_server_auth::config::{ConfigError, EnvConfig};

/// flyctl's variables and the library's variables they stand for.
pub const ALIASES: [(&str, &str); 3] = [
    ("FLY_MCP_BEARER_TOKEN", "MCP_AUTH_BEARER_TOKEN"),
    ("FLY_MCP_USER", "MCP_AUTH_USER"),
    ("FLY_MCP_PASSWORD", "MCP_AUTH_PASSWORD"),
];

/// Why the gateway cannot start. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration variable is wrong.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// A variable is not valid Unicode.
    #[error("configuration error: {0} is not valid Unicode")]
    NotUnicode(String),
    /// A variable is set under both of its names.
    #[error("configuration error: set {alias} or {name}, not both")]
    BothNames {
        /// flyctl's name.
        alias: &'static str,
        /// The library's name.
        name: &'static str,
    },
    /// No credentials, on an address other than loopback.
    #[error(
        "refusing to serve {0} without authentication: set MCP_AUTH_BEARER_TOKEN (or \
         FLY_MCP_BEARER_TOKEN), MCP_AUTH_BEARER_TOKENS, MCP_AUTH_USER and MCP_AUTH_PASSWORD (or \
         FLY_MCP_USER and FLY_MCP_PASSWORD), MCP_AUTH_ISSUER_URL (JWTs), \
         MCP_AUTH_INTROSPECTION_CLIENT_ID and MCP_AUTH_INTROSPECTION_CLIENT_SECRET (opaque \
         tokens) or MCP_AUTH_ASSERTION_HEADER (an identity-aware proxy); a generated token is \
         offered on loopback addresses only"
    )]
    NoCredentials(SocketAddr),
    /// The listen address is not an address.
    #[error("--listen / MCP_AUTH_LISTEN must be an address such as 127.0.0.1:8080")]
    Listen,
    /// The address cannot be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The upstream's HTTP client cannot be built (`proxy`).
    #[error("cannot set up the client for the upstream MCP server: {0}")]
    Upstream(String),
    /// The command cannot be found.
    #[error("the MCP server command {0:?} was not found (give a path, or a program on PATH)")]
    Command(String),
}

/// The `MCP_AUTH_*` and `FLY_MCP_*` variables of `vars`, with flyctl's names mapped.
pub fn auth_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<HashMap<String, String>, StartError> {
    let mut out = HashMap::new();
    for (name, value) in vars {
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        if !name.starts_with("MCP_AUTH_") && !name.starts_with("FLY_MCP_") {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| StartError::NotUnicode(name.clone()))?;
        out.insert(name, value);
    }
    for (alias, name) in ALIASES {
        let set = |n: &str| out.get(n).is_some_and(|v| !v.trim().is_empty());
        if set(alias) && set(name) {
            return Err(StartError::BothNames { alias, name });
        }
        if let Some(value) = out.remove(alias) {
            out.insert(name.to_owned(), value);
        }
    }
    Ok(out)
}

/// The address to bind: `--listen`, else `MCP_AUTH_LISTEN`, else `127.0.0.1:8080`.
pub fn listen_addr(
    flag: Option<SocketAddr>,
    vars: &HashMap<String, String>,
) -> Result<SocketAddr, StartError> {
    if let Some(addr) = flag {
        return Ok(addr);
    }
    match vars.get("MCP_AUTH_LISTEN").map(|v| v.trim()) {
        Some(v) if !v.is_empty() => v.parse().map_err(|_| StartError::Listen),
        _ => Ok(mcp_server_auth::config::DEFAULT_LISTEN),
    }
}

/// The configuration for a gateway bound to `bound` serving MCP at `path`: the variables of
/// `vars` (after [`auth_vars`]), with `MCP_AUTH_LISTEN` set to `bound` and, unless given,
/// `MCP_AUTH_RESOURCE_URL` to `http://<bound>/<path>` (loopback for an unspecified address).
pub fn env_config(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    bound: SocketAddr,
    path: &str,
) -> Result<EnvConfig, StartError> {
    let mut vars = auth_vars(vars)?;
    vars.insert("MCP_AUTH_LISTEN".to_owned(), bound.to_string());
    let resource_set = vars
        .get("MCP_AUTH_RESOURCE_URL")
        .is_some_and(|v| !v.trim().is_empty());
    if !resource_set {
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        vars.insert(
            "MCP_AUTH_RESOURCE_URL".to_owned(),
            format!("http://{addr}{path}"),
        );
    }
    Ok(EnvConfig::from_vars(vars)?)
}

/// Refuses an address other than loopback when `config` has no credentials; on loopback,
/// generates a token, adds it and returns it (to print).
pub fn ensure_credentials(
    config: &mut EnvConfig,
    addr: SocketAddr,
) -> Result<Option<String>, StartError> {
    if config.has_credentials() {
        return Ok(None);
    }
    if !addr.ip().is_loopback() {
        return Err(StartError::NoCredentials(addr));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let token = URL_SAFE_NO_PAD.encode(bytes);
    config.add_bearer_token("generated", &token);
    Ok(Some(token))
}

/// Reloads the token file of `MCP_AUTH_BEARER_TOKENS_FILE` on every `SIGHUP`, besides the
/// watcher that follows its changes. Its own signal loop: another use of `SIGHUP` (reopening a
/// log) installs its own, and each gets every signal. Without a token file, installs nothing
/// (and `SIGHUP` keeps its default action).
pub fn reload_tokens_on_hangup(config: &EnvConfig) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(tokens) = config.bearer_tokens_file().cloned() else {
        return;
    };
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    // A small file read; the outcome is logged, a broken file keeps the tokens.
                    let _ = tokens.reload();
                }
            });
        }
        Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}); the token file is still watched"),
    }
}

/// Prints what a user needs to connect: the URL, and with a generated token the token and a
/// client configuration. Configured secrets are never printed, only their names.
pub fn print_connection_help(config: &EnvConfig, generated: Option<&str>) {
    let url = config.resource_url().as_str();
    println!("mcp-auth-gateway: MCP endpoint at {url}");
    let Some(token) = generated else {
        let mut names: Vec<String> = config.bearer_token_names().map(str::to_owned).collect();
        if let Some(file) = config.bearer_tokens_file() {
            let path = file.path().unwrap_or(std::path::Path::new("")).display();
            names.push(format!("the {} tokens of {path}", file.len()));
        }
        names.extend(config.basic_user().map(str::to_owned));
        names.extend(config.issuer().map(|iss| format!("JWTs from {iss}")));
        if config.introspection_enabled() {
            names.push("opaque tokens (RFC 7662 introspection)".to_owned());
        }
        if config.assertion_verifier().is_some() {
            names.push("an identity-aware proxy's assertion".to_owned());
        }
        println!("accepting: {}", names.join(", "));
        return;
    };
    let client = serde_json::json!({
        "mcpServers": {
            "gateway": {
                "type": "http",
                "url": url,
                "headers": { "Authorization": format!("Bearer {token}") }
            }
        }
    });
    println!();
    println!("Generated bearer token (valid until the gateway stops):");
    println!("  {token}");
    println!();
    println!("Client configuration (Claude Desktop, VS Code, ...):");
    println!(
        "{}",
        serde_json::to_string_pretty(&client).unwrap_or_default()
    );
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        v.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    const TOKEN: &str = "c2VjcmV0LXRva2VuLWZvci1mbHktdXNlcnM";

    #[test]
    fn fly_names_stand_for_the_library_names_but_not_both() {
        let v = auth_vars(vars(&[
            ("FLY_MCP_USER", "alice"),
            ("FLY_MCP_PASSWORD", "pw"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(v.get("MCP_AUTH_USER").map(String::as_str), Some("alice"));
        assert_eq!(v.get("MCP_AUTH_PASSWORD").map(String::as_str), Some("pw"));
        assert!(!v.contains_key("PATH") && !v.contains_key("FLY_MCP_USER"));
        let e = auth_vars(vars(&[
            ("FLY_MCP_BEARER_TOKEN", TOKEN),
            ("MCP_AUTH_BEARER_TOKEN", TOKEN),
        ]))
        .unwrap_err();
        let message = e.to_string();
        assert!(message.contains("FLY_MCP_BEARER_TOKEN or MCP_AUTH_BEARER_TOKEN"));
        assert!(!message.contains(TOKEN));
    }

    #[test]
    fn without_credentials_only_loopback_gets_a_generated_token() {
        let local: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let mut c = env_config(vars(&[]), local, "/rpc").unwrap();
        assert_eq!(c.resource_url().as_str(), "http://127.0.0.1:9000/rpc");
        let token = ensure_credentials(&mut c, local).unwrap().unwrap();
        assert_eq!(token.len(), 43);
        assert!(c.has_credentials());
        let public: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        let mut c = env_config(vars(&[]), public, "/mcp").unwrap();
        assert_eq!(c.resource_url().as_str(), "http://127.0.0.1:9000/mcp");
        let e = ensure_credentials(&mut c, public).unwrap_err();
        let message = e.to_string();
        for name in [
            "MCP_AUTH_BEARER_TOKEN",
            "FLY_MCP_BEARER_TOKEN",
            "MCP_AUTH_ISSUER_URL",
        ] {
            assert!(message.contains(name), "{message}");
        }
        // Configured credentials are kept, on any address.
        let mut c = env_config(vars(&[("FLY_MCP_BEARER_TOKEN", TOKEN)]), public, "/mcp").unwrap();
        assert_eq!(ensure_credentials(&mut c, public).unwrap(), None);
    }
}
