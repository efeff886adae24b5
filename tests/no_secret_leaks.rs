//! No secret leaks: across every refusal path, no configured or presented secret appears in
//! the logs (captured at TRACE), in a response's headers or body, in a configuration error's
//! `Display` or `Debug`, or in the `Debug` of any configuration type.
//!
//! Logs are captured per test (every event as text, and the audit events also as JSON lines,
//! as an audit log gets them) with `tracing::subscriber::with_default` around a current-thread
//! Tokio runtime: the axum server, its connections and the client all run on the test's thread,
//! so every event the layer emits lands in that test's buffer. Each request must add at least
//! one `refused` (or `authenticated`) line, so that a test cannot pass by capturing nothing.
//!
//! A secret is searched for whole and as each of its 16-byte windows, so that a truncated or
//! partial echo of 16 characters or more is caught too (a JWT's header and claims, which are no
//! secret, only whole; its signature by window).
//!
//! Static bearer and Basic requests go over a real socket (reqwest, and raw TCP for bytes no
//! client sends); so do JWT and MCP requests. Passwords in URLs (configured, or sent back by an
//! authorization server on 127.0.0.1): `no_secret_leaks/urls.rs`. Failed-auth throttling and
//! its Redis store: `no_secret_leaks/throttle.rs`. The token file's errors and reload log:
//! `no_secret_leaks/token_file.rs`.
#![cfg(all(
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))] // Remote keys and JWT verification.

mod common;
#[cfg(feature = "introspection")]
#[path = "common/introspection_server.rs"]
mod introspection_server;
#[path = "no_secret_leaks/throttle.rs"]
mod throttle;
#[cfg(unix)]
#[path = "no_secret_leaks/token_file.rs"]
mod token_file;
#[path = "no_secret_leaks/urls.rs"]
mod urls;

use std::{
    collections::HashSet,
    future::Future,
    io,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Router, routing::post};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use common::{TestServer, serve_axum};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use jsonwebtoken::{EncodingKey, Header};
use mcp_server_auth::{
    AllowedOrigins, AuthInfo, AuthLayer, OriginLayer, ProtectedResourceMetadata, ResourceUrl,
    ScopeRequirement, ScopeSet, Verifier, VerifierExt,
    basic::BasicAuth,
    bearer::StaticBearer,
    config::EnvConfig,
    credentials,
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet, TokenCacheConfig},
    mcp::OperationScopes,
    verifier::{AuthRequest, Credentials},
};
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

const TOKEN_CI: &str = "c3RhdGljLXNlY3JldC1jaS1RN3hLcDJ2TG05";
const TOKEN_LAPTOP: &str = "bGFwdG9wLXNlY3JldC1aUjR3TnE4Y1Vz";
const WRONG_TOKEN: &str = "d3JvbmctcHJlc2VudGVkLVg5dkI0bkszcVc";
const QUERY_TOKEN: &str = "cXVlcnktc3RyaW5nLXRva2VuLUg3cE0yeEs";
const BAD_CHARS_TOKEN: &str = "YmFkLWNoYXJzLXRva2VuLUo1dFI4c1FhWg";
const NON_ASCII_TOKEN: &str = "bm9uLWFzY2lpLXRva2VuLUY2Z1c5ckwybQ";
const OVERSIZE_UNIT: &str = "b3ZlcnNpemUtdG9rZW4tVDNrUjdtUXc0WA";

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55word-Vk8qZt";
const WRONG_PASSWORD: &str = "wr0ng-Pa55word-Lm3xYp";
const BAD_B64_PASSWORD: &str = "badb64-Pa55word-Nb6vCx";
const NO_COLON: &str = "aliceNoColonPa55word-Qw9eRt";
const NON_UTF8_PASSWORD: &str = "nonUtf8-Pa55word-Zx7cVb";
const CONTROL_PASSWORD: &str = "ctrl-Pa55word-Hj4kLm";

const HMAC_SECRET: &str = "no-secret-leaks-hmac-key-8Hq2Lw5Zp0Xr3Tc6Vn9B";
const READER_TOKEN: &str = "cmVhZGVyLXNjb3BlLXRva2VuLUs4ZDJmRzVo";
const ARGUMENT_SECRET: &str = "api-key-argument-Rt5Yu8Io1PqZ";

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The base64 body lines of the RSA private key the JWT tests sign with.
fn private_key_lines() -> Vec<String> {
    fixture("rsa_private.pem")
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The secrets to look for, by label; `true` to look for every 16-character part too.
#[derive(Default)]
struct Secrets(Vec<(String, String, bool)>);

/// Secrets are searched for as their 16-byte windows too.
const WINDOW: usize = 16;

impl Secrets {
    fn add(&mut self, label: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((label.into(), value.into(), true));
        self
    }

    /// A JWT: whole, and every part of its signature (its header and claims are no secret).
    fn add_jwt(&mut self, label: &str, token: &str) -> &mut Self {
        let signature = token.rsplit('.').next().unwrap_or_default().to_owned();
        self.0
            .push((format!("{label} (token)"), token.to_owned(), false));
        if !signature.is_empty() {
            self.add(format!("{label} (signature)"), signature);
        }
        self
    }

    /// Panics if `text` (found at `place`) contains a secret, whole or any 16-byte part of it.
    fn assert_absent(&self, place: &str, text: &str) {
        // Parts common to the public key PEM (the PKCS#8/SPKI prefix) are not secret.
        let public_pem = fixture("rsa_public.pem").replace('\n', "");
        let public: HashSet<&[u8]> = public_pem.as_bytes().windows(WINDOW).collect();
        let parts: HashSet<&[u8]> = text.as_bytes().windows(WINDOW).collect();
        for (label, secret, windows) in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{label} leaks in {place}:\n{text}"
            );
            if !windows {
                continue;
            }
            for w in secret.as_bytes().windows(WINDOW) {
                assert!(
                    public.contains(w) || !parts.contains(w),
                    "part {:?} of {label} leaks in {place}:\n{text}",
                    String::from_utf8_lossy(w)
                );
            }
        }
    }
}

fn all_secrets() -> Secrets {
    let mut s = Secrets::default();
    s.add("static token ci", TOKEN_CI)
        .add("static token laptop", TOKEN_LAPTOP)
        .add("presented wrong token", WRONG_TOKEN)
        .add("query-string token", QUERY_TOKEN)
        .add("token with bad characters", BAD_CHARS_TOKEN)
        .add("non-ASCII token", NON_ASCII_TOKEN)
        .add("oversize token", OVERSIZE_UNIT)
        .add("Basic password", PASSWORD)
        .add("presented wrong password", WRONG_PASSWORD)
        .add("password in bad base64", BAD_B64_PASSWORD)
        .add("credentials without colon", NO_COLON)
        .add("non-UTF-8 password", NON_UTF8_PASSWORD)
        .add("password with control character", CONTROL_PASSWORD)
        .add("HMAC secret", HMAC_SECRET)
        .add("reader token", READER_TOKEN)
        .add("tool argument", ARGUMENT_SECRET)
        .add(
            "Basic credentials (base64)",
            STANDARD.encode(format!("{USER}:{PASSWORD}")),
        )
        .add(
            "wrong Basic credentials (base64)",
            STANDARD.encode(format!("{USER}:{WRONG_PASSWORD}")),
        );
    for (i, line) in private_key_lines().into_iter().enumerate() {
        s.add(format!("RSA private key line {}", i + 1), line);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Log capture
// ---------------------------------------------------------------------------------------------

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(self.0.clone())
    }
}

impl Capture {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[mark..]).into_owned()
    }

    fn text(&self) -> String {
        self.since(0)
    }
}

/// Runs `test` on a current-thread runtime with every TRACE event of this thread captured;
/// returns the whole log.
fn with_logs<F, Fut>(test: F) -> String
where
    F: FnOnce(Capture) -> Fut,
    Fut: Future<Output = ()>,
{
    use tracing_subscriber::{Layer as _, filter::Targets, layer::SubscriberExt};
    let capture = Capture::default();
    // Every event as text, and the audit events once more as the JSON lines an operator's
    // audit log gets (`mcp_server_auth::audit`).
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(capture.clone())
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(capture.clone())
                .with_filter(
                    Targets::new()
                        .with_target(mcp_server_auth::audit::TARGET, tracing::Level::INFO),
                ),
        );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test(capture.clone())));
    drop(runtime);
    capture.text()
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// What came back: status, every header as `name: value` lines, body.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn text(&self) -> String {
        format!("{}\n{}\n{}", self.status, self.head, self.body)
    }
}

async fn from_reqwest(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let head = res
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let body = res.text().await.unwrap();
    Reply { status, head, body }
}

/// `POST path` with these `Authorization` field values (raw bytes), extra headers and body.
async fn send(
    server: &TestServer,
    path: &str,
    authorization: &[&[u8]],
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = common::client()
        .post(server.url(path))
        .body(body.to_owned());
    for a in authorization {
        req = req.header(AUTHORIZATION, HeaderValue::from_bytes(a).unwrap());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    from_reqwest(req.send().await.unwrap()).await
}

/// `POST /mcp` over raw TCP with one `Authorization` line of exactly these bytes.
async fn post_raw(server: &TestServer, authorization: &[u8]) -> Reply {
    let mut bytes =
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n"
            .to_vec();
    bytes.extend_from_slice(b"Authorization: ");
    bytes.extend_from_slice(authorization);
    bytes.extend_from_slice(b"\r\n\r\n");
    let (status, text) = common::raw_request(server.addr, &bytes).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The inner service answers with every header it was handed, so a forwarded `Authorization`
/// header would show in the body.
async fn echo_headers(headers: HeaderMap) -> String {
    format!("inner saw {headers:?}")
}

fn app<V: Verifier>(layer: AuthLayer<V>) -> Router {
    Router::new()
        .route("/mcp", post(echo_headers).get(echo_headers))
        .layer(layer)
}

/// Sends one request and checks its reply and the log lines it caused.
struct Check<'a> {
    capture: &'a Capture,
    secrets: &'a Secrets,
    /// How many requests were checked.
    count: usize,
}

impl<'a> Check<'a> {
    fn new(capture: &'a Capture, secrets: &'a Secrets) -> Self {
        Self {
            capture,
            secrets,
            count: 0,
        }
    }

    /// Awaits `reply`; asserts its status, that the request logged a line containing
    /// `marker`, and that neither the reply nor those lines contain a secret.
    async fn expect(
        &mut self,
        label: &str,
        status: u16,
        marker: &str,
        reply: impl Future<Output = Reply>,
    ) -> Reply {
        let mark = self.capture.len();
        let reply = reply.await;
        let logs = self.capture.since(mark);
        assert_eq!(reply.status, status, "{label}: {reply:?}\nlogs:\n{logs}");
        assert!(
            logs.contains(marker),
            "{label}: no log line containing {marker:?}; captured:\n{logs}"
        );
        self.secrets
            .assert_absent(&format!("the response to {label}"), &reply.text());
        self.secrets
            .assert_absent(&format!("the logs of {label}"), &logs);
        self.count += 1;
        reply
    }
}

fn basic_field(raw: &[u8]) -> Vec<u8> {
    format!("Basic {}", STANDARD.encode(raw)).into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Static bearer and Basic, over a real socket
// ---------------------------------------------------------------------------------------------

fn static_bearer() -> StaticBearer {
    StaticBearer::new([("ci", TOKEN_CI), ("laptop", TOKEN_LAPTOP)]).unwrap()
}

fn basic_auth() -> BasicAuth {
    BasicAuth::builder().user(USER, PASSWORD).build().unwrap()
}

#[test]
fn static_bearer_refusals_leak_nothing() {
    let secrets = &all_secrets();
    let logs = with_logs(|capture| async move {
        let layer = AuthLayer::builder(static_bearer())
            .error_descriptions(true)
            .build()
            .unwrap();
        let server = serve_axum(app(layer)).await;
        let mut c = Check::new(&capture, secrets);
        let refused = "refused";

        let wrong = format!("Bearer {WRONG_TOKEN}");
        c.expect(
            "a wrong token",
            401,
            refused,
            send(&server, "/mcp", &[wrong.as_bytes()], &[], ""),
        )
        .await;
        c.expect(
            "a wrong token (raw TCP)",
            401,
            refused,
            post_raw(&server, wrong.as_bytes()),
        )
        .await;

        // Trailing whitespace is not part of a field value (RFC 9110 §5.5): accepted, and the
        // inner service does not see the header.
        let good = format!("Bearer {TOKEN_CI} ");
        let ok = c
            .expect(
                "the good token with a trailing space",
                200,
                "authenticated",
                post_raw(&server, good.as_bytes()),
            )
            .await;
        assert!(ok.body.contains("inner saw"), "{ok:?}");

        let laptop = format!("Bearer {TOKEN_LAPTOP}");
        c.expect(
            "two Authorization fields",
            400,
            refused,
            send(
                &server,
                "/mcp",
                &[wrong.as_bytes(), laptop.as_bytes()],
                &[],
                "",
            ),
        )
        .await;

        let oversize = format!("Bearer {}", OVERSIZE_UNIT.repeat(300));
        c.expect(
            "an oversize header",
            400,
            refused,
            send(&server, "/mcp", &[oversize.as_bytes()], &[], ""),
        )
        .await;

        let mut non_ascii = format!("Bearer {NON_ASCII_TOKEN}").into_bytes();
        non_ascii.extend_from_slice(&[0xc3, 0xa9, 0xff]);
        c.expect(
            "a non-ASCII header",
            400,
            refused,
            send(&server, "/mcp", &[&non_ascii], &[], ""),
        )
        .await;
        c.expect(
            "a non-ASCII header (raw TCP)",
            400,
            refused,
            post_raw(&server, &non_ascii),
        )
        .await;

        let bad = format!("Bearer {BAD_CHARS_TOKEN}\"*!");
        c.expect(
            "a token with characters outside b64token",
            400,
            refused,
            send(&server, "/mcp", &[bad.as_bytes()], &[], ""),
        )
        .await;

        let query = format!("/mcp?access_token={QUERY_TOKEN}");
        c.expect(
            "a token in the query string",
            401,
            refused,
            send(&server, &query, &[], &[], ""),
        )
        .await;
        c.expect(
            "a token in a form body",
            401,
            refused,
            send(
                &server,
                "/mcp",
                &[],
                &[("content-type", "application/x-www-form-urlencoded")],
                &format!("access_token={QUERY_TOKEN}"),
            ),
        )
        .await;
        assert_eq!(c.count, 10);
    });
    secrets.assert_absent("the whole log", &logs);
    assert!(logs.matches("refused").count() >= 9, "{logs}");
    assert!(logs.contains("TRACE"), "TRACE events are captured: {logs}");
    let audit_lines = logs.matches(r#""target":"mcp_server_auth::audit""#).count();
    assert!(audit_lines >= 10, "audit JSON lines are captured: {logs}");
}

#[test]
fn basic_refusals_leak_nothing() {
    let secrets = &all_secrets();
    let logs = with_logs(|capture| async move {
        let layer = AuthLayer::builder(static_bearer().or(basic_auth()))
            .error_descriptions(true)
            .build()
            .unwrap();
        let server = serve_axum(app(layer)).await;
        let mut c = Check::new(&capture, secrets);
        let refused = "refused";

        let wrong = basic_field(format!("{USER}:{WRONG_PASSWORD}").as_bytes());
        c.expect(
            "a wrong password",
            401,
            refused,
            send(&server, "/mcp", &[&wrong], &[], ""),
        )
        .await;
        c.expect(
            "a wrong password (raw TCP)",
            401,
            refused,
            post_raw(&server, &wrong),
        )
        .await;

        let unknown = basic_field(format!("mallory:{PASSWORD}").as_bytes());
        c.expect(
            "an unknown user",
            401,
            refused,
            send(&server, "/mcp", &[&unknown], &[], ""),
        )
        .await;

        let mut bad_b64 = basic_field(format!("{USER}:{BAD_B64_PASSWORD}").as_bytes());
        bad_b64.extend_from_slice(b"*");
        c.expect(
            "credentials that are not base64",
            400,
            refused,
            send(&server, "/mcp", &[&bad_b64], &[], ""),
        )
        .await;

        let no_colon = basic_field(NO_COLON.as_bytes());
        c.expect(
            "credentials without a colon",
            400,
            refused,
            post_raw(&server, &no_colon),
        )
        .await;

        let mut raw = format!("{USER}:{NON_UTF8_PASSWORD}").into_bytes();
        raw.push(0xff);
        let non_utf8 = basic_field(&raw);
        c.expect(
            "credentials that are not UTF-8",
            400,
            refused,
            send(&server, "/mcp", &[&non_utf8], &[], ""),
        )
        .await;

        let control = basic_field(format!("{USER}:{CONTROL_PASSWORD}\u{1}").as_bytes());
        c.expect(
            "credentials with a control character",
            400,
            refused,
            send(&server, "/mcp", &[&control], &[], ""),
        )
        .await;

        let good = basic_field(format!("{USER}:{PASSWORD}").as_bytes());
        let ok = c
            .expect(
                "the right password",
                200,
                "authenticated",
                post_raw(&server, &good),
            )
            .await;
        assert!(ok.body.contains("inner saw"), "{ok:?}");
        assert_eq!(c.count, 8);
    });
    secrets.assert_absent("the whole log", &logs);
    assert!(logs.matches("refused").count() >= 7, "{logs}");
}

// ---------------------------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------------------------

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(aud: &str, iss: &str, exp: u64, scope: &str) -> Value {
    json!({
        "iss": iss,
        "sub": "user-1",
        "aud": aud,
        "exp": exp,
        "iat": now() - 10,
        "client_id": "client-1",
        "scope": scope,
        "jti": format!("{aud}{iss}{exp}{scope}"),
    })
}

fn hs256(kid: &str, claims: &Value) -> String {
    // Signing needs jsonwebtoken's crypto provider, which building a verifier installs.
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(HMAC_SECRET.as_bytes()),
    )
    .unwrap()
}

fn rs256(kid: &str, claims: &Value) -> String {
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn jwt_keys() -> KeySet {
    KeySet::new()
        .add_hmac_secret(Some("hs-1"), Algorithm::HS256, HMAC_SECRET.as_bytes())
        .unwrap()
        .add_pem(
            Some("rsa-1"),
            Algorithm::RS256,
            fixture("rsa_public.pem").as_bytes(),
        )
        .unwrap()
}

fn jwt_verifier() -> JwtVerifier {
    JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(Issuer::with_keys(ISSUER, jwt_keys()))
        .token_cache(TokenCacheConfig::default())
        .build()
        .unwrap()
}

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .authorization_server(ISSUER)
        .scopes_supported(["mcp:read"])
        .build()
        .unwrap()
}

/// Replaces the middle of a token's signature, keeping it valid base64url.
fn tamper(token: &str) -> String {
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let mid = sig.len() / 2;
    sig[mid] ^= 0x5a;
    format!("{rest}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// An identity-aware proxy's assertion (Cloudflare Access-shaped) in its own header: accepted,
/// refused, repeated or oversized, no part of it reaches the logs or a refusal.
#[test]
fn proxy_assertions_leak_nothing() {
    use mcp_server_auth::assertion::{AssertionVerifier, Proxy};
    const TEAM: &str = "https://acme.cloudflareaccess.com";
    const TAG: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
    let header = Proxy::CloudflareAccess.header();
    let assertion = |exp: u64, aud: &str, pad: usize| {
        let claims = json!({
            "aud": [aud], "email": "alice@acme.example", "iss": TEAM, "type": "app",
            "exp": exp, "iat": now() - 10, "sub": "7335d417", "custom": {"pad": "p".repeat(pad)},
        });
        rs256("rsa-1", &claims)
    };
    let valid = assertion(now() + 600, TAG, 0);
    let refused = [
        ("expired", assertion(now() - 3600, TAG, 0)),
        ("another application", assertion(now() + 600, "0123abcd", 0)),
        ("bad signature", tamper(&valid)),
        ("oversized", assertion(now() + 600, TAG, 9 * 1024)),
    ];
    let mut secrets = all_secrets();
    secrets.add_jwt("valid assertion", &valid);
    for (label, token) in &refused {
        secrets.add_jwt(label, token);
    }
    let secrets = &secrets;
    let keys = KeySet::new()
        .add_pem(
            Some("rsa-1"),
            Algorithm::RS256,
            fixture("rsa_public.pem").as_bytes(),
        )
        .unwrap();
    let verifier = AssertionVerifier::builder(header.clone())
        .issuer(TEAM)
        .keys(keys)
        .algorithms([Algorithm::RS256])
        .audience(TAG)
        .build()
        .unwrap();
    let logs = with_logs(|capture| async move {
        let server = serve_axum(app(AuthLayer::new(verifier))).await;
        let name = header.as_str();
        let mut check = Check::new(&capture, secrets);
        // Accepted: the inner service sees the proxy's header (it is the proxy's, not a token
        // to pass through), so only the logs are checked.
        let mark = capture.len();
        let reply = send(&server, "/mcp", &[], &[(name, &valid)], "").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let logs = capture.since(mark);
        assert!(logs.contains("authenticated"), "{logs}");
        secrets.assert_absent("the logs of an accepted assertion", &logs);
        for (label, token) in &refused {
            let headers = [(name, token.as_str())];
            let reply = send(&server, "/mcp", &[], &headers, "");
            check.expect(label, 403, "refused", reply).await;
        }
        let twice = [(name, valid.as_str()), (name, valid.as_str())];
        let reply = send(&server, "/mcp", &[], &twice, "");
        check.expect("repeated", 403, "refused", reply).await;
        assert_eq!(check.count, refused.len() + 1);
    });
    secrets.assert_absent("the whole log", &logs);
}

#[test]
fn jwt_refusals_leak_nothing() {
    let later = now() + 600;
    let good = claims(RESOURCE, ISSUER, later, "mcp:read");
    let mut cases: Vec<(&str, String, u16)> = Vec::new();
    for (alg, mint) in [
        ("HS256", hs256 as fn(&str, &Value) -> String),
        ("RS256", rs256),
    ] {
        let kid = if alg == "HS256" { "hs-1" } else { "rsa-1" };
        let leak = |s: &str| -> &'static str { Box::leak(format!("{alg}: {s}").into_boxed_str()) };
        cases.extend([
            (
                leak("expired"),
                mint(kid, &claims(RESOURCE, ISSUER, now() - 3600, "mcp:read")),
                401,
            ),
            (
                leak("wrong audience"),
                mint(
                    kid,
                    &claims("https://other.example.com/mcp", ISSUER, later, "mcp:read"),
                ),
                401,
            ),
            (
                leak("wrong issuer"),
                mint(
                    kid,
                    &claims(RESOURCE, "https://evil.example.com", later, "mcp:read"),
                ),
                401,
            ),
            (leak("bad signature"), tamper(&mint(kid, &good)), 401),
            (leak("unknown kid"), mint("nope", &good), 401),
            (
                leak("missing scope"),
                mint(kid, &claims(RESOURCE, ISSUER, later, "mcp:other")),
                403,
            ),
        ]);
    }
    // `alg: none`, unsigned.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
    cases.push(("alg none", format!("{none_header}.{payload}."), 401));
    // An RS256 header over an HMAC signature (algorithm confusion).
    let confused = hs256("rsa-1", &good);
    cases.push(("RS256 kid with an HS256 signature", confused, 401));

    let valid = rs256("rsa-1", &good);
    let mut secrets = all_secrets();
    for (label, token, _) in &cases {
        secrets.add_jwt(label, token);
    }
    secrets.add_jwt("valid token", &valid);

    let (secrets, cases) = (&secrets, &cases);
    let logs = with_logs(|capture| async move {
        let verifier = jwt_verifier();
        let layer = AuthLayer::builder(verifier.clone())
            .metadata(metadata())
            .required_scopes(ScopeRequirement::all_of(["mcp:read"]).unwrap())
            .error_descriptions(true)
            .build()
            .unwrap();
        let server = serve_axum(app(layer)).await;
        let mut c = Check::new(&capture, secrets);
        for (label, token, status) in cases {
            let field = format!("Bearer {token}");
            // Twice: the second time the verified-token cache may answer.
            for _ in 0..2 {
                c.expect(
                    label,
                    *status,
                    "refused",
                    send(&server, "/mcp", &[field.as_bytes()], &[], ""),
                )
                .await;
            }
        }
        let field = format!("Bearer {valid}");
        for label in ["a valid token", "a valid token (from the cache)"] {
            let ok = c
                .expect(
                    label,
                    200,
                    "authenticated",
                    send(&server, "/mcp", &[field.as_bytes()], &[], ""),
                )
                .await;
            assert!(ok.body.contains("inner saw"));
        }
        // The cache holds the valid token and the two valid tokens that lack the scope (their
        // refusal is the layer's, after verification), and nothing refused by the verifier.
        assert_eq!(verifier.cache_usage().map(|(n, _)| n), Some(3));

        // The identity handed to handlers: claims, but not the token.
        let info = verifier.verify_token(&valid).await.unwrap();
        let claims_text = serde_json::to_string(info.claims().unwrap()).unwrap();
        secrets.assert_absent("AuthInfo claims", &claims_text);
        secrets.assert_absent("AuthInfo Debug", &format!("{info:?}"));
        for (label, token, _) in cases {
            let refusal = verifier.verify_token(token).await;
            secrets.assert_absent(
                &format!("{label}: Rejection Debug"),
                &format!("{refusal:?}"),
            );
        }
    });
    secrets.assert_absent("the whole log", &logs);
    assert!(logs.matches("refused").count() >= 2 * cases.len(), "{logs}");
}

/// Certificate-bound tokens (RFC 8705) refused for want of their certificate, with a trusted
/// proxy's certificate header missing or unreadable: neither the token nor the header's text
/// reaches the logs or the reply.
#[test]
fn certificate_bound_refusals_leak_nothing() {
    use mcp_server_auth::{
        mtls::{CertificateBound, CertificateOptions},
        throttle::TrustedProxies,
    };
    let mut bound = claims(RESOURCE, ISSUER, now() + 600, "mcp:read");
    bound["cnf"] = json!({ "x5t#S256": URL_SAFE_NO_PAD.encode([7u8; 32]) });
    let token = rs256("rsa-1", &bound);
    let garbage = "Cert=\"c2VjcmV0LWxvb2tpbmctY2VydGlmaWNhdGUtaGVhZGVy\"";
    let mut secrets = all_secrets();
    secrets.add_jwt("certificate-bound token", &token);
    secrets.add("certificate header", garbage);
    let (secrets, token) = (&secrets, &token);
    let logs = with_logs(|capture| async move {
        let options = CertificateOptions::new().header_from_trusted_proxies(
            http::HeaderName::from_static("x-ssl-client-cert"),
            TrustedProxies::parse("127.0.0.1").unwrap(),
        );
        let layer = AuthLayer::new(CertificateBound::new(jwt_verifier(), options));
        let server = common::serve_axum_with_peers(app(layer)).await;
        let mut c = Check::new(&capture, secrets);
        let field = format!("Bearer {token}");
        let authorization = [field.as_bytes()];
        let unreadable = [("x-ssl-client-cert", garbage)];
        for (label, headers) in [
            ("no certificate header", &[][..]),
            ("an unreadable certificate header", &unreadable[..]),
        ] {
            // Twice: the second time the verified-token cache answers.
            for _ in 0..2 {
                let reply = send(&server, "/mcp", &authorization, headers, "");
                c.expect(label, 401, "refused", reply).await;
            }
        }
    });
    secrets.assert_absent("the whole log", &logs);
    assert!(logs.matches("refused").count() >= 4, "{logs}");
}

// ---------------------------------------------------------------------------------------------
// MCP scope layer
// ---------------------------------------------------------------------------------------------

#[test]
fn mcp_scope_refusals_leak_nothing() {
    let secrets = &all_secrets();
    let logs = with_logs(|capture| async move {
        let tokens = StaticBearer::builder()
            .token_with_scopes("reader", READER_TOKEN, ScopeSet::parse("mcp:read").unwrap())
            .build()
            .unwrap();
        let auth = AuthLayer::builder(tokens)
            .metadata(metadata())
            .error_descriptions(true)
            .build()
            .unwrap();
        let scopes = OperationScopes::builder()
            .tool("echo", ["mcp:read"])
            .tool("write_note", ["mcp:write"])
            .build()
            .unwrap();
        let app = Router::new()
            .route("/mcp", post(echo_headers))
            .layer(auth.mcp_scopes(scopes).verify_headers(true))
            .layer(auth);
        let server = serve_axum(app).await;
        let mut c = Check::new(&capture, secrets);
        let reader = format!("Bearer {READER_TOKEN}");
        let call = |tool: &str| {
            json!({
                "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": tool, "arguments": {"api_key": ARGUMENT_SECRET}}
            })
            .to_string()
        };

        let res = c
            .expect(
                "a tool call without its scope",
                403,
                "refused: insufficient scope",
                send(
                    &server,
                    "/mcp",
                    &[reader.as_bytes()],
                    &[],
                    &call("write_note"),
                ),
            )
            .await;
        assert!(res.head.contains("insufficient_scope"), "{res:?}");

        let res = c
            .expect(
                "Mcp-Name disagreeing with the body",
                400,
                "refused: MCP operation unreadable",
                send(
                    &server,
                    "/mcp",
                    &[reader.as_bytes()],
                    &[
                        ("mcp-method", "tools/call"),
                        ("mcp-name", "echo"),
                        ("mcp-protocol-version", "2026-07-28"),
                    ],
                    &call("write_note"),
                ),
            )
            .await;
        assert!(res.body.contains("-32020"), "{res:?}");

        let res = c
            .expect(
                "Mcp-Name twice",
                400,
                "refused: MCP operation unreadable",
                send(
                    &server,
                    "/mcp",
                    &[reader.as_bytes()],
                    &[
                        ("mcp-method", "tools/call"),
                        ("mcp-name", "echo"),
                        ("mcp-name", "write_note"),
                    ],
                    &call("echo"),
                ),
            )
            .await;
        assert!(res.body.contains("-32020"), "{res:?}");

        let res = c
            .expect(
                "a body that is not JSON",
                400,
                "refused: MCP operation unreadable",
                send(
                    &server,
                    "/mcp",
                    &[reader.as_bytes()],
                    &[],
                    &format!("{{\"api_key\": \"{ARGUMENT_SECRET}\""),
                ),
            )
            .await;
        assert!(res.body.contains("-32700"), "{res:?}");

        let ok = c
            .expect(
                "an allowed tool call",
                200,
                "authenticated",
                send(&server, "/mcp", &[reader.as_bytes()], &[], &call("echo")),
            )
            .await;
        assert!(ok.body.contains("inner saw"));
        assert_eq!(c.count, 5);
    });
    secrets.assert_absent("the whole log", &logs);
}

// ---------------------------------------------------------------------------------------------
// Configuration errors and Debug
// ---------------------------------------------------------------------------------------------

const CFG_SHORT: &str = "tiny-Zq8x";
const CFG_BAD_CHARS: &str = "has space Kp3Lm9Xx2Vb7";
const CFG_DUPLICATE: &str = "ZHVwbGljYXRlLWNvbmZpZy10b2tlbi1NNGg";
const CFG_PASSWORD: &str = "cfg-password-Wd3Fs7Jk";
const CFG_TOKEN: &str = "Y29uZmlnLXRva2VuLWZvci1kZWJ1Zy1QN3c";

fn config_secrets() -> Secrets {
    let mut s = all_secrets();
    s.add("short configured token", CFG_SHORT)
        .add("configured token with bad characters", "Kp3Lm9Xx2Vb7")
        .add("duplicated configured token", CFG_DUPLICATE)
        .add("configured password", CFG_PASSWORD)
        .add("configured token", CFG_TOKEN);
    s
}

#[test]
fn config_errors_name_no_secret() {
    let secrets = config_secrets();
    let dup = format!("a:{CFG_DUPLICATE},b:{CFG_DUPLICATE}");
    let pw_ctrl = format!("{CFG_PASSWORD}\u{1}");
    let s = |v: &str| v.to_owned();
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("MCP_AUTH_BEARER_TOKEN", s(CFG_SHORT))],
        vec![("MCP_AUTH_BEARER_TOKEN", s(CFG_BAD_CHARS))],
        vec![("MCP_AUTH_BEARER_TOKENS", format!("ci:{CFG_BAD_CHARS}"))],
        vec![("MCP_AUTH_BEARER_TOKENS", dup)],
        vec![("MCP_AUTH_BEARER_TOKENS", format!(":{CFG_TOKEN}"))],
        vec![("MCP_AUTH_BEARER_TOKENS", format!("{CFG_SHORT},ci:"))],
        vec![("MCP_AUTH_PASSWORD", s(CFG_PASSWORD))],
        vec![
            ("MCP_AUTH_USER", s(USER)),
            ("MCP_AUTH_PASSWORD", pw_ctrl.clone()),
        ],
        vec![
            ("MCP_AUTH_BEARER_TOKEN", s(CFG_TOKEN)),
            ("MCP_AUTH_USER", s(USER)),
            ("MCP_AUTH_PASSWORD", s(CFG_PASSWORD)),
            ("MCP_AUTH_REALM", s("bad\"realm")),
        ],
    ];
    let mut errors = 0;
    for vars in cases {
        let label = format!("{:?}", vars.iter().map(|(k, _)| k).collect::<Vec<_>>());
        match EnvConfig::from_vars(vars.iter().map(|(k, v)| (*k, v.clone()))) {
            Err(e) => {
                errors += 1;
                secrets.assert_absent(&format!("Display of the error for {label}"), &e.to_string());
                secrets.assert_absent(
                    &format!("Debug of the error for {label}"),
                    &format!("{e:?}"),
                );
            }
            Ok(config) => {
                // Reported when the layer is built instead.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let e = rt.block_on(config.layer()).expect_err(&label);
                errors += 1;
                secrets.assert_absent(&format!("Display of the error for {label}"), &e.to_string());
                secrets.assert_absent(
                    &format!("Debug of the error for {label}"),
                    &format!("{e:?}"),
                );
                secrets.assert_absent(
                    &format!("Debug of the config for {label}"),
                    &format!("{config:?}"),
                );
            }
        }
    }
    assert_eq!(errors, 9);
    // The construction errors of the verifiers themselves.
    let e = StaticBearer::new([("ci", CFG_SHORT)]).unwrap_err();
    secrets.assert_absent("StaticTokenError", &format!("{e} {e:?}"));
    let e = StaticBearer::new([("ci", CFG_BAD_CHARS)]).unwrap_err();
    secrets.assert_absent("StaticTokenError", &format!("{e} {e:?}"));
    let e = BasicAuth::builder()
        .user(USER, pw_ctrl)
        .build()
        .unwrap_err();
    secrets.assert_absent("BasicUserError", &format!("{e} {e:?}"));
    let e = KeySet::new()
        .add_hmac_secret(None, Algorithm::HS256, b"short-hmac")
        .unwrap_err();
    secrets.assert_absent("KeyError", &format!("{e} {e:?}"));
    let e = KeySet::new()
        .add_pem(
            None,
            Algorithm::RS256,
            fixture("rsa_private.pem").as_bytes(),
        )
        .map(|_| ());
    secrets.assert_absent(
        "KeyError (a private key given as public)",
        &format!("{e:?}"),
    );
}

#[test]
fn debug_of_every_configuration_type_names_no_secret() {
    let secrets = config_secrets();
    let mut seen = Vec::new();
    let mut check = |label: &str, debug: String| {
        assert!(!debug.is_empty(), "{label}");
        secrets.assert_absent(&format!("Debug of {label}"), &debug);
        seen.push(label.to_owned());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    check(
        "StaticBearerBuilder",
        format!(
            "{:?}",
            StaticBearer::builder()
                .token("ci", TOKEN_CI)
                .token("short", CFG_SHORT)
        ),
    );
    check("StaticBearer", format!("{:?}", static_bearer()));
    check(
        "BasicAuthBuilder",
        format!("{:?}", BasicAuth::builder().user(USER, PASSWORD)),
    );
    check("BasicAuth", format!("{:?}", basic_auth()));
    let keys = jwt_keys();
    check("KeySet", format!("{keys:?}"));
    for key in keys.iter() {
        check("JwtKey", format!("{key:?}"));
    }
    let issuer = Issuer::with_keys(ISSUER, jwt_keys());
    check("Issuer", format!("{issuer:?}"));
    let builder = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap()).issuer(issuer);
    check("JwtVerifierBuilder", format!("{builder:?}"));
    let verifier = builder.build().unwrap();
    check("JwtVerifier", format!("{verifier:?}"));

    let config = EnvConfig::from_vars([
        (
            "MCP_AUTH_BEARER_TOKENS",
            format!("ci:{CFG_TOKEN},laptop:{TOKEN_LAPTOP}").as_str(),
        ),
        ("MCP_AUTH_USER", USER),
        ("MCP_AUTH_PASSWORD", CFG_PASSWORD),
        ("MCP_AUTH_TOOL_SCOPES", "echo=mcp:read"),
        ("MCP_AUTH_ALLOWED_ORIGINS", "https://app.example.com"),
    ])
    .unwrap();
    check("EnvConfig", format!("{config:?}"));
    check(
        "EnvConfig::static_bearer",
        format!("{:?}", config.static_bearer().unwrap()),
    );
    check(
        "EnvConfig::basic_auth",
        format!("{:?}", config.basic_auth().unwrap()),
    );
    let env_verifier = rt.block_on(config.verifier()).unwrap();
    check("EnvVerifier", format!("{env_verifier:?}"));
    let env_layer = rt.block_on(config.layer()).unwrap();
    check("AuthLayer<EnvVerifier>", format!("{env_layer:?}"));

    let layer_builder = AuthLayer::builder(static_bearer().or(basic_auth()))
        .metadata(metadata())
        .required_scopes(ScopeRequirement::all_of(["mcp:read"]).unwrap());
    check("AuthLayerBuilder", format!("{layer_builder:?}"));
    let layer = layer_builder.build().unwrap();
    check(
        "AuthLayer<Or<StaticBearer, BasicAuth>>",
        format!("{layer:?}"),
    );
    let jwt_layer = AuthLayer::new(verifier.clone());
    check("AuthLayer<JwtVerifier>", format!("{jwt_layer:?}"));
    let scopes = OperationScopes::builder()
        .tool("echo", ["mcp:read"])
        .build()
        .unwrap();
    check("OperationScopes", format!("{scopes:?}"));
    check("McpScopeLayer", format!("{:?}", layer.mcp_scopes(scopes)));
    check(
        "RequireScopesLayer",
        format!(
            "{:?}",
            layer.require_scopes(ScopeRequirement::all_of(["mcp:read"]).unwrap())
        ),
    );
    let origins = AllowedOrigins::localhost()
        .allow("https://app.example.com")
        .unwrap();
    check("AllowedOrigins", format!("{origins:?}"));
    check("OriginLayer", format!("{:?}", OriginLayer::new(origins)));
    check(
        "EnvConfig::allowed_origins",
        format!("{:?}", config.allowed_origins()),
    );

    // What a request carries.
    let mut headers = HeaderMap::new();
    let field = format!("Bearer {TOKEN_CI}");
    headers.insert(AUTHORIZATION, field.parse().unwrap());
    let auth = credentials::authorization(&headers, 8192).unwrap().unwrap();
    check("credentials::Authorization", format!("{auth:?}"));
    let basic = credentials::basic(&STANDARD.encode(format!("{USER}:{PASSWORD}"))).unwrap();
    check("BasicCredentials", format!("{basic:?}"));
    let verdict = static_bearer().verify(&AuthRequest::credentials_only(Credentials::Bearer(
        TOKEN_CI,
    )));
    check("Verdict (accepted)", format!("{verdict:?}"));
    let verdict = static_bearer().verify(&AuthRequest::credentials_only(Credentials::Bearer(
        WRONG_TOKEN,
    )));
    check("Verdict (refused)", format!("{verdict:?}"));
    let verdict = basic_auth().verify(&AuthRequest::credentials_only(Credentials::Basic(&basic)));
    check("Verdict (Basic)", format!("{verdict:?}"));
    let token = rs256("rsa-1", &claims(RESOURCE, ISSUER, now() + 600, "mcp:read"));
    let mut with_token = secrets;
    with_token.add_jwt("valid token", &token);
    let info: AuthInfo = rt.block_on(verifier.verify_token(&token)).unwrap();
    let debug = format!("{info:?}");
    with_token.assert_absent("Debug of AuthInfo (JWT)", &debug);
    assert!(debug.contains("user-1"), "{debug}");
    assert_eq!(seen.len(), 29, "{seen:?}");
}

/// Configuration errors never echo a value holding a secret (a password pasted into the user-id,
/// user information in a URL).
#[test]
fn config_errors_do_not_echo_userinfo() {
    let secret = "Echoed-Secret-Uv7Wq3Zr";
    let mut failures = Vec::new();
    let cases = [
        // A password put in the user-id variable (`user:password`).
        vec![
            ("MCP_AUTH_USER", format!("alice:{secret}")),
            ("MCP_AUTH_PASSWORD", "x".to_owned()),
        ],
        // Credentials in the resource URL.
        vec![(
            "MCP_AUTH_RESOURCE_URL",
            format!("https://user:{secret}@mcp.example.com/mcp"),
        )],
        // Credentials in an allowed origin.
        vec![(
            "MCP_AUTH_ALLOWED_ORIGINS",
            format!("https://user:{secret}@app.example.com"),
        )],
        // Credentials in an authorization server URL.
        vec![
            ("MCP_AUTH_ISSUER_URL", "https://auth.example.com".to_owned()),
            (
                "MCP_AUTH_AUTHORIZATION_SERVERS",
                format!("https://user:{secret}@auth.example.com"),
            ),
        ],
    ];
    for vars in cases {
        let text = match EnvConfig::from_vars(vars.clone()) {
            Err(e) => e.to_string(),
            Ok(c) => c
                .metadata()
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string()),
        };
        if text.contains(secret) {
            failures.push(format!("{:?}: {text}", vars[0].0));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// Token introspection (RFC 7662): every failure path, over real sockets
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "introspection")]
const INTROSPECTION_SECRET: &str = "introspection-Secret:%+é-Wq7Zp3";
#[cfg(feature = "introspection")]
const OPAQUE_GOOD: &str = "b3BhcXVlLWdvb2QtdG9rZW4tUjhrMnhMNXE";
#[cfg(feature = "introspection")]
const OPAQUE_FAILS: &str = "b3BhcXVlLWZhaWxzLXRva2VuLU01dlg5cVo";
#[cfg(feature = "introspection")]
const OPAQUE_ECHOED: &str = "b3BhcXVlLWVjaG9lZC10b2tlbi1KM3dMN24";

#[cfg(feature = "introspection")]
#[test]
fn introspection_refusals_and_failures_leak_nothing() {
    use introspection_server::{Endpoint, Expect, Fault, hanging_server};
    use mcp_server_auth::introspection::{ClientAuth, IntrospectionOptions, IntrospectionVerifier};
    use std::time::Duration;

    let mut secrets = all_secrets();
    secrets
        .add("introspection client secret", INTROSPECTION_SECRET)
        .add("introspected token", OPAQUE_GOOD)
        .add("token whose introspection fails", OPAQUE_FAILS)
        .add("token the endpoint echoes", OPAQUE_ECHOED);
    let mut tokens: Vec<String> = (0..6)
        .map(|i| format!("{OPAQUE_FAILS}-refused-{i}"))
        .collect();
    for t in &tokens {
        secrets.add("refused opaque token", t.clone());
    }
    let secrets = &secrets;
    let tokens = &mut tokens;
    let logs = with_logs(|capture| async move {
        let endpoint = Endpoint::start(Expect::Basic {
            id: "mcp-server".to_owned(),
            secret: INTROSPECTION_SECRET.to_owned(),
        })
        .await;
        let good = json!({"active": true, "sub": "user-1", "scope": "mcp:read", "iss": ISSUER,
            "aud": RESOURCE, "exp": now() + 600});
        endpoint.answer(OPAQUE_GOOD, good.clone());
        // An endpoint that echoes the token where an object belongs.
        endpoint.answer(OPAQUE_ECHOED, json!(OPAQUE_ECHOED));
        let refusals = [
            json!({"active": false}),
            json!({"active": "true", "aud": RESOURCE, "exp": now() + 600, "sub": "u"}),
            json!({"active": true, "sub": "u", "iss": ISSUER, "aud": "https://other.example/mcp", "exp": now() + 600}),
            json!({"active": true, "sub": "u", "iss": "https://evil.example", "aud": RESOURCE, "exp": now() + 600}),
            json!({"active": true, "sub": "u", "iss": ISSUER, "aud": RESOURCE, "exp": now() - 3600}),
            json!({"active": true, "sub": "u", "iss": ISSUER, "aud": RESOURCE, "exp": now() + 600, "scope": "other"}),
        ];
        for (token, answer) in tokens.iter().zip(refusals) {
            endpoint.answer(token, answer);
        }
        let build = |url: String, secret: &str, cap: usize| {
            IntrospectionVerifier::builder(
                ResourceUrl::parse(RESOURCE).unwrap(),
                ClientAuth::client_secret_basic("mcp-server", secret),
            )
            .endpoint(url)
            .issuer(ISSUER)
            .options(IntrospectionOptions {
                timeout: Duration::from_millis(300),
                max_concurrent_calls: cap,
                ..Default::default()
            })
            .build()
            .unwrap()
        };
        let verifier = build(endpoint.url(), INTROSPECTION_SECRET, 32);
        let layer = AuthLayer::builder(verifier.clone())
            .metadata(metadata())
            .required_scopes(ScopeRequirement::all_of(["mcp:read"]).unwrap())
            .error_descriptions(true)
            .build()
            .unwrap();
        let server = serve_axum(app(layer)).await;
        let mut c = Check::new(&capture, secrets);
        let field = |t: &str| format!("Bearer {t}");
        for label in ["an introspected token", "an introspected token (cached)"] {
            let f = field(OPAQUE_GOOD);
            c.expect(
                label,
                200,
                "authenticated",
                send(&server, "/mcp", &[f.as_bytes()], &[], ""),
            )
            .await;
        }
        for (i, token) in tokens.iter().enumerate() {
            let status = if i == 5 { 403 } else { 401 };
            let f = field(token);
            c.expect(
                "a refused opaque token",
                status,
                "refused",
                send(&server, "/mcp", &[f.as_bytes()], &[], ""),
            )
            .await;
        }
        let f = field(OPAQUE_ECHOED);
        c.expect(
            "an echoed token",
            503,
            "refused",
            send(&server, "/mcp", &[f.as_bytes()], &[], ""),
        )
        .await;
        for fault in [
            Fault::Status(500),
            Fault::Status(401),
            Fault::Garbage,
            Fault::Oversize,
            Fault::Redirect,
        ] {
            endpoint.set_fault(fault);
            let f = field(OPAQUE_FAILS);
            c.expect(
                &format!("endpoint {fault:?}"),
                503,
                "refused",
                send(&server, "/mcp", &[f.as_bytes()], &[], ""),
            )
            .await;
        }
        endpoint.set_fault(Fault::None);
        // Our own credentials refused.
        let wrong = build(endpoint.url(), "wrong-introspection-secret-Hk2", 32);
        let wrong_server = serve_axum(app(AuthLayer::new(wrong.clone()))).await;
        let f = field(OPAQUE_FAILS);
        c.expect(
            "wrong client secret",
            503,
            "refused",
            send(&wrong_server, "/mcp", &[f.as_bytes()], &[], ""),
        )
        .await;
        // A hanging endpoint (timeout), and the call cap (a second token while one hangs).
        let (hang, _) = hanging_server().await;
        let hung = build(hang.url("/introspect"), INTROSPECTION_SECRET, 1);
        let hung_server = serve_axum(app(AuthLayer::new(hung.clone()))).await;
        let f = field(OPAQUE_FAILS);
        c.expect(
            "timeout",
            503,
            "refused",
            send(&hung_server, "/mcp", &[f.as_bytes()], &[], ""),
        )
        .await;
        let first = field(OPAQUE_GOOD);
        let first: [&[u8]; 1] = [first.as_bytes()];
        let (slow, busy) = tokio::join!(send(&hung_server, "/mcp", &first, &[], ""), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.expect(
                "too many calls",
                503,
                "refused",
                send(&hung_server, "/mcp", &[f.as_bytes()], &[], ""),
            )
            .await
        });
        secrets.assert_absent("the response to a timed-out call", &slow.text());
        assert_eq!((slow.status, busy.status), (503, 503));

        // Debug of the verifiers and the refusals.
        for (label, v) in [
            ("IntrospectionVerifier", &verifier),
            ("with a wrong secret", &wrong),
            ("hung", &hung),
        ] {
            secrets.assert_absent(&format!("Debug of {label}"), &format!("{v:?}"));
        }
        for token in [OPAQUE_GOOD, OPAQUE_FAILS, OPAQUE_ECHOED] {
            let r = verifier.verify_token(token).await;
            secrets.assert_absent("verify_token's result", &format!("{r:?}"));
        }
        let auth = ClientAuth::client_secret_post("mcp-server", INTROSPECTION_SECRET);
        secrets.assert_absent("Debug of ClientAuth", &format!("{auth:?}"));
        let builder = IntrospectionVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap(), auth)
            .endpoint(format!("https://u:{INTROSPECTION_SECRET}@as.example.com/i"));
        secrets.assert_absent("Debug of the builder", &format!("{builder:?}"));
        let e = builder.build().unwrap_err();
        secrets.assert_absent("a configuration error", &format!("{e} {e:?}"));
        // The environment.
        let config = EnvConfig::from_vars([
            ("MCP_AUTH_INTROSPECTION_URL", endpoint.url().as_str()),
            ("MCP_AUTH_INTROSPECTION_CLIENT_ID", "mcp-server"),
            ("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", INTROSPECTION_SECRET),
        ])
        .unwrap();
        secrets.assert_absent("Debug of EnvConfig", &format!("{config:?}"));
        let env_verifier = config.verifier().await.unwrap();
        secrets.assert_absent("Debug of EnvVerifier", &format!("{env_verifier:?}"));
        for vars in [
            vec![("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", INTROSPECTION_SECRET)],
            vec![
                ("MCP_AUTH_INTROSPECTION_CLIENT_ID", "mcp-server"),
                ("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", INTROSPECTION_SECRET),
                ("MCP_AUTH_INTROSPECTION_AUTH", INTROSPECTION_SECRET),
            ],
        ] {
            let e = EnvConfig::from_vars(vars).unwrap_err();
            secrets.assert_absent(
                "an introspection configuration error",
                &format!("{e} {e:?}"),
            );
        }
        assert_eq!(c.count, 17);
    });
    secrets.assert_absent("the whole log", &logs);
    assert!(logs.contains("token introspection failed"), "{logs}");
}
