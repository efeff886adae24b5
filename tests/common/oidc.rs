//! A real authorization server for the tests: npm `oidc-provider` (see
//! `tests/interop/as/server.mjs`) on a free port of 127.0.0.1, issuing RFC 9068 JWT access
//! tokens for RFC 8707 resource indicators (or opaque ones, [`StartOptions::opaque`]), and opaque
//! tokens when no resource is asked for. Its RFC 7662 introspection and RFC 7009 revocation
//! endpoints are on.
//!
//! Include it with `#[path = "common/oidc.rs"] mod oidc;` and `#[path = "common/install.rs"] mod
//! install;` (it needs nothing else from `common`).
//! Needs `node` (20 or later) and `npm` on `PATH`; the npm packages pinned by
//! `tests/interop/as/package-lock.json` are installed by [`ensure_npm_deps`] on first use.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    fs,
    io::{self, BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

use super::install::{InstallLock, run_install};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

/// The confidential client registered in the server (`client_secret_basic`; the server accepts
/// `client_secret_post` from it too).
pub const CLIENT_ID: &str = "mcp-test-client";
pub const CLIENT_SECRET: &str = "mcp-test-secret";
/// The redirect URI registered for [`CLIENT_ID`]; nothing listens there.
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The subject the headless login signs in.
pub const ACCOUNT_ID: &str = "test-user";
/// Lifetime of access tokens when not told otherwise.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;
/// The MCP server's own client (a resource server: it only introspects), registered with
/// `client_secret_basic` (the server accepts `client_secret_post` from it too).
pub const RS_CLIENT_ID: &str = "mcp-resource-server";
/// [`RS_CLIENT_ID`]'s secret: `:`, `%` and `+` (and a `%2B` that must not become `+`) test the
/// form-urlencoding of RFC 6749 §2.3.1. oidc-provider allows only printable ASCII in secrets.
pub const RS_SECRET: &str = "rs:secret%2B+with:colon%percent+plus";
/// The resource server's `private_key_jwt` client, registered when
/// [`StartOptions::rs_key_file`] is given.
pub const RS_JWT_CLIENT_ID: &str = "mcp-resource-server-jwt";
/// The client whose tokens are all DPoP-bound, registered with [`StartOptions::dpop`].
pub const DPOP_CLIENT_ID: &str = "mcp-dpop-client";
pub const DPOP_CLIENT_SECRET: &str = "mcp-dpop-secret";
/// The client whose tokens are all bound to its TLS certificate, registered with
/// [`StartOptions::mtls`].
pub const MTLS_CLIENT_ID: &str = "mcp-mtls-client";
pub const MTLS_CLIENT_SECRET: &str = "mcp-mtls-secret";

/// How to start an [`AuthServer`].
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Lifetime of access tokens issued for a resource.
    pub ttl_secs: u64,
    /// Opaque access tokens for a resource (still bound to it: introspection names it in
    /// `aud`), instead of JWTs.
    pub opaque: bool,
    /// A PEM key whose public half [`RS_JWT_CLIENT_ID`] authenticates with.
    pub rs_key_file: Option<PathBuf>,
    /// `AS_DPOP=1`: DPoP configured explicitly and [`DPOP_CLIENT_ID`] registered.
    pub dpop: bool,
    /// `AS_DPOP_NONCE=1` (with `dpop`): the token endpoint requires DPoP nonces.
    pub dpop_nonce: bool,
    /// `AS_MTLS=1` with this certificate chain and key (PEM files) for the HTTPS listener:
    /// certificate-bound tokens from [`AuthServer::mtls_token_endpoint`] for
    /// [`MTLS_CLIENT_ID`].
    pub mtls: Option<(PathBuf, PathBuf)>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            opaque: false,
            rs_key_file: None,
            dpop: false,
            dpop_nonce: false,
            mtls: None,
        }
    }
}

const START_TIMEOUT: Duration = Duration::from_secs(30);
const NPM_LOCK_WAIT: Duration = Duration::from_secs(120);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

/// `tests/interop/as`, where `server.mjs` and its `package.json` live.
pub fn as_dir() -> PathBuf {
    // The library's tests and the gateway's (a workspace member one level down) share it.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/interop/as"))
        .find(|dir| dir.join("server.mjs").is_file())
        .expect("tests/interop/as in this crate or the workspace around it")
}

/// Installs the server's npm packages (`npm ci`) unless `node_modules` already matches
/// `package-lock.json`. Runs at most once per process; a lock file in the cargo target
/// directory serialises concurrent test binaries. Blocking: from async code use
/// [`ensure_npm_deps_async`].
pub fn ensure_npm_deps() {
    static DONE: OnceLock<()> = OnceLock::new();
    // `get_or_init` makes concurrent callers wait until the first one has finished.
    DONE.get_or_init(install_npm_deps);
}

/// [`ensure_npm_deps`] on a blocking thread.
pub async fn ensure_npm_deps_async() {
    if let Err(e) = tokio::task::spawn_blocking(ensure_npm_deps).await {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `node_modules` holds what `package-lock.json` pins: the packages are there and the stamp
/// written after the last successful `npm ci` is a copy of the current lock file.
fn npm_deps_up_to_date(dir: &Path) -> bool {
    let modules = dir.join("node_modules");
    let installed = ["oidc-provider", "jose"]
        .iter()
        .all(|p| modules.join(p).join("package.json").is_file());
    let lock = fs::read(dir.join("package-lock.json"))
        .unwrap_or_else(|e| panic!("cannot read {}/package-lock.json: {e}", dir.display()));
    installed && fs::read(modules.join(STAMP)).is_ok_and(|stamp| stamp == lock)
}

/// Inside `node_modules`, so that `npm ci` (which starts by deleting `node_modules`) removes it.
const STAMP: &str = ".mcp-server-auth-lock-stamp";

fn install_npm_deps() {
    let dir = as_dir();
    if npm_deps_up_to_date(&dir) {
        return;
    }
    let _lock = InstallLock::acquire("interop-as-npm-install.lock", NPM_LOCK_WAIT);
    // Another test binary may have installed them while this one waited for the lock.
    if npm_deps_up_to_date(&dir) {
        return;
    }
    run_install(
        "npm",
        ["ci", "--no-audit", "--no-fund"],
        &dir,
        "interop-as-npm-ci.log",
        NPM_CI_TIMEOUT,
        "the interop tests need Node.js 20+ and npm to run a real authorization server \
         (tests/interop/as)",
    );
    let lock = fs::read(dir.join("package-lock.json")).unwrap();
    fs::write(dir.join("node_modules").join(STAMP), lock).unwrap();
}

/// A running `oidc-provider` on 127.0.0.1; the node process is killed when this is dropped
/// (and it also exits by itself when its stdin closes, should the test process die).
pub struct AuthServer {
    /// `http://127.0.0.1:PORT`, exactly as the server puts it in tokens and metadata.
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    /// RFC 7662 token introspection.
    pub introspection_endpoint: String,
    /// RFC 7009 token revocation.
    pub revocation_endpoint: String,
    /// The token endpoint over mutual TLS (RFC 8705 §5 `mtls_endpoint_aliases`), with
    /// [`StartOptions::mtls`].
    pub mtls_token_endpoint: Option<String>,
    pub port: u16,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// Kills a child that never became an [`AuthServer`].
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl AuthServer {
    /// Starts a server whose access tokens live [`DEFAULT_TOKEN_TTL_SECS`].
    pub async fn start() -> AuthServer {
        AuthServer::start_with(DEFAULT_TOKEN_TTL_SECS).await
    }

    /// Starts a server whose access tokens live `ttl_secs` seconds.
    pub async fn start_with(ttl_secs: u64) -> AuthServer {
        AuthServer::start_opts(StartOptions {
            ttl_secs,
            ..StartOptions::default()
        })
        .await
    }

    /// Starts a server as `options` say.
    pub async fn start_opts(options: StartOptions) -> AuthServer {
        ensure_npm_deps_async().await;
        let started = Instant::now();
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(as_dir())
            .env("AS_PORT", "0")
            .env("AS_TOKEN_TTL", options.ttl_secs.to_string())
            .env(
                "AS_TOKEN_FORMAT",
                if options.opaque { "opaque" } else { "jwt" },
            )
            .env_remove("AS_RS_KEY_FILE")
            .env_remove("AS_KEEP_STDIN")
            .env_remove("AS_DPOP")
            .env_remove("AS_DPOP_NONCE")
            .env_remove("AS_MTLS")
            .env_remove("AS_TLS_CERT_FILE")
            .env_remove("AS_TLS_KEY_FILE");
        if let Some(file) = &options.rs_key_file {
            command.env("AS_RS_KEY_FILE", file);
        }
        if options.dpop {
            command.env("AS_DPOP", "1");
        }
        if options.dpop_nonce {
            command.env("AS_DPOP_NONCE", "1");
        }
        if let Some((cert, key)) = &options.mtls {
            command
                .env("AS_MTLS", "1")
                .env("AS_TLS_CERT_FILE", cert)
                .env("AS_TLS_KEY_FILE", key);
        }
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    panic!("`node` was not found on PATH: the interop tests need Node.js 20+")
                }
                panic!("cannot start node server.mjs: {e}")
            });
        let mut guard = ChildGuard(Some(child));
        let child = guard.0.as_mut().unwrap();

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut line = String::new();
            while matches!(err_pipe.read_line(&mut line), Ok(n) if n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });

        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut out_pipe = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            let mut line = String::new();
            let read = out_pipe.read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
            // Nothing more is expected on stdout; keep the pipe drained all the same.
            let _ = io::copy(&mut out_pipe, &mut io::sink());
        });

        let line = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Ok(line))) if !line.trim().is_empty() => line,
            outcome => {
                let status = child.try_wait().ok().flatten();
                drop(guard);
                // Let the stderr reader catch up with a process that just died.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "the authorization server did not start ({}; exit status {status:?}); \
                     its stderr:\n{}",
                    match outcome {
                        Err(_) => format!("no ready line within {START_TIMEOUT:?}"),
                        Ok(Ok(Ok(_))) | Ok(Err(_)) => "stdout closed".to_owned(),
                        Ok(Ok(Err(e))) => format!("reading stdout: {e}"),
                    },
                    stderr.lock().unwrap()
                );
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bad ready line from server.mjs ({e}): {line:?}"));
        let field = |name: &str| {
            ready[name]
                .as_str()
                .unwrap_or_else(|| panic!("ready line without {name}: {line}"))
                .to_owned()
        };
        let server = AuthServer {
            issuer: field("issuer"),
            jwks_uri: field("jwks_uri"),
            token_endpoint: field("token_endpoint"),
            introspection_endpoint: field("introspection_endpoint"),
            revocation_endpoint: field("revocation_endpoint"),
            mtls_token_endpoint: ready["mtls_token_endpoint"].as_str().map(str::to_owned),
            port: ready["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap(),
            child: guard.0.take().unwrap(),
            stderr,
        };
        if std::env::var_os("AS_TIMINGS").is_some() {
            eprintln!(
                "authorization server {} ready in {:.2} s",
                server.issuer,
                started.elapsed().as_secs_f64()
            );
        }
        server
    }

    /// `issuer` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// The node process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stderr so far (oidc-provider's warnings, errors).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// RFC 8414 authorization server metadata (`/.well-known/oauth-authorization-server`).
    pub async fn metadata(&self) -> Value {
        self.get_json(&self.url("/.well-known/oauth-authorization-server"))
            .await
    }

    /// OpenID Connect discovery (`/.well-known/openid-configuration`).
    pub async fn openid_configuration(&self) -> Value {
        self.get_json(&self.url("/.well-known/openid-configuration"))
            .await
    }

    /// The JWK set the tokens are signed with.
    pub async fn jwks(&self) -> Value {
        self.get_json(&self.jwks_uri).await
    }

    async fn get_json(&self, url: &str) -> Value {
        let res = http_client().get(url).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "GET {url}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
    }

    /// Revokes `token` (RFC 7009) as [`CLIENT_ID`], the client it was issued to.
    pub async fn revoke(&self, token: &str) {
        let res = http_client()
            .post(&self.revocation_endpoint)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_encode(&[
                ("token", token),
                ("token_type_hint", "access_token"),
            ]))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "revocation refused: {body}");
    }

    /// The requests its introspection endpoint has received so far, authenticated or not.
    pub async fn introspection_calls(&self) -> u64 {
        let counts = self.get_json(&self.url("/test/introspection-calls")).await;
        counts["calls"]
            .as_u64()
            .unwrap_or_else(|| panic!("no call count in {counts}"))
    }

    /// A raw token request, authenticated as [`CLIENT_ID`] with HTTP Basic, for tests that
    /// expect an error.
    pub async fn token_request(&self, params: &[(&str, &str)]) -> reqwest::Response {
        http_client()
            .post(&self.token_endpoint)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_encode(params))
            .send()
            .await
            .unwrap()
    }

    /// A token request that must succeed: the token endpoint's JSON answer.
    pub async fn token_response(&self, params: &[(&str, &str)]) -> Value {
        let res = self.token_request(params).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "token request {params:?} refused: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("token response {e}: {body}"))
    }

    /// The full `client_credentials` token response; `resource` is sent when given.
    pub async fn client_credentials_response(&self, resource: Option<&str>, scope: &str) -> Value {
        let mut params = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(resource) = resource {
            params.push(("resource", resource));
        }
        self.token_response(&params).await
    }

    /// A `client_credentials` access token: a JWT with `aud` = `resource` when a resource is
    /// given, an opaque token otherwise.
    pub async fn client_credentials(&self, resource: Option<&str>, scope: &str) -> String {
        access_token(&self.client_credentials_response(resource, scope).await)
    }

    /// The authorization-code flow with PKCE (S256) and `resource`, without a browser: the
    /// server's own interaction route logs in [`ACCOUNT_ID`] and consents. Returns the token
    /// endpoint's JSON answer (`access_token`, `refresh_token`, ...).
    pub async fn authorization_code(&self, resource: &str, scope: &str) -> Value {
        let metadata = self.metadata().await;
        let authorization_endpoint = metadata["authorization_endpoint"].as_str().unwrap();
        let (verifier, challenge) = pkce_pair();
        let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", scope),
            ("resource", resource),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
        ]);
        let mut url = format!("{authorization_endpoint}?{query}");
        let client = http_client();
        let mut cookies = BTreeMap::<String, String>::new();
        let mut hops = 0;
        let callback = loop {
            hops += 1;
            assert!(
                hops <= 12,
                "authorization flow: too many redirects, last {url}"
            );
            let mut req = client.get(&url);
            if !cookies.is_empty() {
                let header = cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                req = req.header(http::header::COOKIE, header);
            }
            let res = req.send().await.unwrap();
            for value in res.headers().get_all(http::header::SET_COOKIE) {
                let value = value.to_str().unwrap();
                let pair = value.split(';').next().unwrap();
                let (name, val) = pair.split_once('=').unwrap_or((pair, ""));
                if val.is_empty()
                    || value
                        .to_ascii_lowercase()
                        .contains("expires=thu, 01 jan 1970")
                {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_owned(), val.to_owned());
                }
            }
            let status = res.status();
            if !status.is_redirection() {
                let body = res.text().await.unwrap_or_default();
                panic!("authorization flow stopped at {url}: {status}: {body}");
            }
            let location = res.headers()[http::header::LOCATION].to_str().unwrap();
            let next = if location.starts_with('/') {
                self.url(location)
            } else {
                location.to_owned()
            };
            if next.starts_with(&format!("{REDIRECT_URI}?")) {
                break next;
            }
            url = next;
        };
        let params = parse_query(callback.split_once('?').unwrap().1);
        if let Some(error) = params.get("error") {
            panic!("authorization refused: {error}: {callback}");
        }
        assert_eq!(params.get("state"), Some(&state), "state: {callback}");
        assert_eq!(params.get("iss"), Some(&self.issuer), "iss: {callback}");
        let code = &params["code"];
        self.token_response(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("resource", resource),
        ])
        .await
    }

    /// A `refresh_token` grant, for the given resource.
    pub async fn refresh(&self, refresh_token: &str, resource: &str) -> Value {
        self.token_response(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("resource", resource),
        ])
        .await
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `access_token` of a token response.
pub fn access_token(response: &Value) -> String {
    response["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {response}"))
        .to_owned()
}

/// Header and payload of a compact JWS, decoded without checking anything.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "not a compact JWS: {token}");
    let decode = |s: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .unwrap_or_else(|e| panic!("segment {s} is not base64url: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("segment {s} is not JSON: {e}"))
    };
    (decode(segments[0]), decode(segments[1]))
}

/// Whether `token` looks like a JWT (three dot-separated segments).
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `application/x-www-form-urlencoded` (also good as a URL query).
pub fn form_encode(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A random PKCE `code_verifier` and its S256 `code_challenge`.
pub fn pkce_pair() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = pkce_s256(&verifier);
    (verifier, challenge)
}

/// RFC 7636 S256: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

/// FIPS 180-4 SHA-256 (no SHA-256 crate among the dev-dependencies; only PKCE needs it).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}
