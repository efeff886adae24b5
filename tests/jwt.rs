//! JWT access tokens (RFC 9068 / RFC 7519 / RFC 8725) through a real `AuthLayer` in front of a
//! real axum server on 127.0.0.1, driven by reqwest: every row checks the status, the exact
//! `WWW-Authenticate` challenge, the JSON error body, and that nothing of the token comes back.
//!
//! Tokens are minted here with `jsonwebtoken` and the test-only keys of `tests/fixtures/jwt/`
//! (RS256, ES256, EdDSA; HS256 from a secret), or crafted by hand for the malformed cases.
//!
//! Covers the token's place in the request (RFC 6750 §2.1; MCP 2025-11-25, Authorization,
//! “Token Handling”), the validation rules (RFC 9068 §4, RFC 7519 §4.1, RFC 8725 §3.1 and §3.11,
//! RFC 8707 §2 for the audience) and the JWT access token profile (RFC 9068 §2).
#![cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] // JWT verification needs a crypto backend.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, challenges, client, serve_axum};
use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthInfo, AuthLayer, AuthMethod, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement,
    jwt::{
        Algorithm, Issuer, JwtConfigError, JwtVerifier, JwtVerifierBuilder, KeyError, KeySet,
        TokenCacheConfig,
    },
    verifier::{Invalid, Rejection},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ORIGIN_RESOURCE: &str = "https://mcp.example.com";
const ISSUER: &str = "https://auth.example.com";
const ISSUER_B: &str = "https://login.other-idp.example";
const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const ORIGIN_METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource";
/// A test-only HMAC secret (at least 32 bytes).
const HMAC_SECRET: &[u8] = b"test-only-hmac-secret-0123456789-abcdefghij";

// ---------------------------------------------------------------------------------------------
// Keys and minting
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The signing keys of the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    /// Issuer A, RS256, kid `rsa-1`.
    Rsa,
    /// Issuer A, ES256, kid `ec-1`.
    Ec,
    /// Issuer A, EdDSA, kid `ed-1`.
    Ed,
    /// Issuer A, HS256, kid `hs-1`.
    Hs,
    /// Issuer B, ES256, kid `b-ec-1`.
    B,
    /// Nobody's key, EdDSA, kid `attacker`.
    Attacker,
}

impl K {
    fn alg(self) -> Algorithm {
        match self {
            K::Rsa => Algorithm::RS256,
            K::Ec | K::B => Algorithm::ES256,
            K::Ed | K::Attacker => Algorithm::EdDSA,
            K::Hs => Algorithm::HS256,
        }
    }

    fn kid(self) -> &'static str {
        match self {
            K::Rsa => "rsa-1",
            K::Ec => "ec-1",
            K::Ed => "ed-1",
            K::Hs => "hs-1",
            K::B => "b-ec-1",
            K::Attacker => "attacker",
        }
    }

    fn encoding(self) -> EncodingKey {
        match self {
            K::Rsa => EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(),
            K::Ec => EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap(),
            K::Ed => EncodingKey::from_ed_pem(&fixture("ed25519_private.pem")).unwrap(),
            K::Hs => EncodingKey::from_secret(HMAC_SECRET),
            K::B => EncodingKey::from_ec_pem(&fixture("issuer_b_ec_private.pem")).unwrap(),
            K::Attacker => {
                EncodingKey::from_ed_pem(&fixture("attacker_ed25519_private.pem")).unwrap()
            }
        }
    }
}

/// Issuer A's verification keys: RS256, ES256, EdDSA (PEM) and HS256 (secret).
fn keys_a() -> KeySet {
    KeySet::new()
        .add_pem(Some("rsa-1"), Algorithm::RS256, &fixture("rsa_public.pem"))
        .unwrap()
        .add_pem(Some("ec-1"), Algorithm::ES256, &fixture("ec_public.pem"))
        .unwrap()
        .add_pem(
            Some("ed-1"),
            Algorithm::EdDSA,
            &fixture("ed25519_public.pem"),
        )
        .unwrap()
        .add_hmac_secret(Some("hs-1"), Algorithm::HS256, HMAC_SECRET)
        .unwrap()
}

/// Issuer B's verification key.
fn keys_b() -> KeySet {
    KeySet::new()
        .add_pem(
            Some("b-ec-1"),
            Algorithm::ES256,
            &fixture("issuer_b_ec_public.pem"),
        )
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(v: &Value) -> String {
    b64(serde_json::to_vec(v).unwrap())
}

/// The crate's provider must be installed before jsonwebtoken signs anything: with both
/// backends compiled in (`--features rust-crypto`), jsonwebtoken cannot pick one by itself.
fn install() {
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
}

/// A token to mint: a header and claims as JSON (so that any header, valid or not, can be
/// written), signed with a key and algorithm that default to the header's.
#[derive(Clone)]
struct Jwt {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: EncodingKey,
    sign_alg: Algorithm,
}

/// Makes every minted token distinct, so that no row can be answered from another's cache entry.
static JTI: AtomicUsize = AtomicUsize::new(0);

/// A valid token of issuer A (or B for [`K::B`]) for [`RESOURCE`], signed by `k`, with scope
/// `mcp:read`, `typ: at+jwt` and every RFC 9068 claim.
fn jwt(k: K) -> Jwt {
    let n = now();
    let iss = if k == K::B { ISSUER_B } else { ISSUER };
    let claims = json!({
        "iss": iss,
        "aud": RESOURCE,
        "sub": "user-123",
        "client_id": "client-abc",
        "exp": n + 600,
        "iat": n,
        "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::Relaxed)),
        "scope": "mcp:read",
    });
    let alg = serde_json::to_value(k.alg()).unwrap();
    Jwt {
        header: json!({"alg": alg, "typ": "at+jwt", "kid": k.kid()})
            .as_object()
            .unwrap()
            .clone(),
        claims: claims.as_object().unwrap().clone(),
        key: k.encoding(),
        sign_alg: k.alg(),
    }
}

impl Jwt {
    /// Sets a header parameter; `Value::Null` removes it.
    fn h(mut self, name: &str, v: impl Into<Value>) -> Self {
        match v.into() {
            Value::Null => self.header.remove(name),
            v => self.header.insert(name.to_owned(), v),
        };
        self
    }

    /// Sets a claim; `Value::Null` removes it.
    fn c(mut self, name: &str, v: impl Into<Value>) -> Self {
        match v.into() {
            Value::Null => self.claims.remove(name),
            v => self.claims.insert(name.to_owned(), v),
        };
        self
    }

    /// Signs with another key and algorithm, whatever the header says.
    fn signed_with(mut self, key: EncodingKey, alg: Algorithm) -> Self {
        self.key = key;
        self.sign_alg = alg;
        self
    }

    fn sign(&self) -> String {
        let payload = serde_json::to_vec(&self.claims).unwrap();
        sign_raw(
            &Value::Object(self.header.clone()),
            &payload,
            &self.key,
            self.sign_alg,
        )
    }
}

/// `b64(header).b64(payload).signature` with the payload taken as bytes (it need not be JSON).
fn sign_raw(header: &Value, payload: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    install();
    let message = format!("{}.{}", b64_json(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// The token with its payload replaced by `claims`, signature kept.
fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64_json(claims), parts[2])
}

/// The token with one character in the middle of its signature changed.
fn flip_signature(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<u8> = signature.bytes().collect();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
    format!("{message}.{}", String::from_utf8(sig).unwrap())
}

/// The public JWK of the attacker's key, to embed in a header.
fn attacker_jwk() -> Value {
    let jwk = Jwk::from_encoding_key(&K::Attacker.encoding(), Algorithm::EdDSA).unwrap();
    serde_json::to_value(jwk).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// A verifier for `resource` trusting issuer A.
fn builder_for(resource: &str) -> JwtVerifierBuilder {
    JwtVerifier::builder(ResourceUrl::parse(resource).unwrap())
        .issuer(Issuer::with_keys(ISSUER, keys_a()))
}

fn builder() -> JwtVerifierBuilder {
    builder_for(RESOURCE)
}

/// What the handler answers: the identity the layer handed over.
async fn who(info: AuthInfo) -> Json<Value> {
    Json(json!({
        "subject": info.subject(),
        "method": info.method().as_str(),
        "scopes": info.scopes().iter().collect::<Vec<_>>(),
        "client_id": info.client_id(),
        "issuer": info.issuer(),
        "expires_at": info
            .expires_at()
            .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs()),
        "claims": info.claims(),
        "typed": info.claims_as::<MyClaims>().and_then(Result::ok),
        "principal": [info.principal().0, Some(info.principal().1)],
    }))
}

/// Claims of the application's own shape, read with `AuthInfo::claims_as`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct MyClaims {
    sub: String,
    exp: u64,
    tenant: Option<String>,
    roles: Option<Vec<String>>,
}

/// `/read` (needs `mcp:read`) and `/write` (needs `mcp:write`), each behind its own layer around
/// the same verifier; the metadata names `resource`.
fn app(verifier: JwtVerifier, resource: &str, max_header_bytes: Option<usize>) -> Router {
    let layer = |scope: &str| {
        let metadata = ProtectedResourceMetadata::builder(ResourceUrl::parse(resource).unwrap())
            .authorization_server(ISSUER)
            .scopes_supported(["mcp:read"])
            .build()
            .unwrap();
        let mut b = AuthLayer::builder(verifier.clone())
            .metadata(metadata)
            .required_scopes(ScopeRequirement::all_of([scope]).unwrap());
        if let Some(n) = max_header_bytes {
            b = b.max_header_bytes(n);
        }
        b.build().unwrap()
    };
    Router::new()
        .route("/read", get(who))
        .route_layer(layer("mcp:read"))
        .merge(
            Router::new()
                .route("/write", get(who))
                .route_layer(layer("mcp:write")),
        )
}

async fn serve(verifier: JwtVerifier) -> TestServer {
    serve_axum(app(verifier, RESOURCE, None)).await
}

/// Every test is bounded.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("the test timed out")
}

/// What a request got back.
struct Got {
    status: u16,
    challenges: Vec<String>,
    cache_control: Option<String>,
    /// Every header, `name: value` per line.
    head: String,
    body: String,
}

async fn call(server: &TestServer, path: &str, token: &str) -> Got {
    let res = client()
        .get(server.url(path))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let challenges = challenges(&res);
    let cache_control = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let head = res
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let body = res.text().await.unwrap();
    Got {
        status,
        challenges,
        cache_control,
        head,
        body,
    }
}

fn json_body(got: &Got) -> Value {
    serde_json::from_str(&got.body).unwrap_or_else(|e| panic!("{e}: {}", got.body))
}

/// A run of more than 8 characters of the token found in the response head or body, if any.
fn echoed(token: &str, got: &Got) -> Option<String> {
    let text = format!("{}{}", got.head, got.body);
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(8))
        .map(|i| &bytes[i..i + 9])
        .find(|w| token.as_bytes().windows(9).any(|t| t == *w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// The configurations the table runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Srv {
    /// Issuer A, resource `https://mcp.example.com/mcp`, defaults.
    Main,
    /// As `Main`, with `max_header_bytes(128 KiB)` on the layers.
    BigHeader,
    /// `strict_rfc9068(true)`.
    Strict,
    /// `scope_claims(["permissions"])`.
    Permissions,
    /// `.audience("api://mcp")`.
    ExtraAud,
    /// A `claims_check` refusing `tenant: "evil"`.
    Check,
    /// Resource `https://mcp.example.com` (a bare origin).
    Origin,
    /// Issuers A and B, each with its own keys.
    Multi,
}

const ALL_SERVERS: [Srv; 8] = [
    Srv::Main,
    Srv::BigHeader,
    Srv::Strict,
    Srv::Permissions,
    Srv::ExtraAud,
    Srv::Check,
    Srv::Origin,
    Srv::Multi,
];

async fn start(srv: Srv) -> TestServer {
    let app = match srv {
        Srv::Main => app(builder().build().unwrap(), RESOURCE, None),
        Srv::BigHeader => app(builder().build().unwrap(), RESOURCE, Some(128 * 1024)),
        Srv::Strict => app(
            builder().strict_rfc9068(true).build().unwrap(),
            RESOURCE,
            None,
        ),
        Srv::Permissions => app(
            builder().scope_claims(["permissions"]).build().unwrap(),
            RESOURCE,
            None,
        ),
        Srv::ExtraAud => app(
            builder().audience("api://mcp").build().unwrap(),
            RESOURCE,
            None,
        ),
        Srv::Check => app(
            builder()
                .claims_check(
                    |claims| match claims.get("tenant").and_then(Value::as_str) {
                        Some("evil") => Err("tenant not allowed"),
                        _ => Ok(()),
                    },
                )
                .build()
                .unwrap(),
            RESOURCE,
            None,
        ),
        Srv::Origin => app(
            builder_for(ORIGIN_RESOURCE).build().unwrap(),
            ORIGIN_RESOURCE,
            None,
        ),
        Srv::Multi => app(
            builder()
                .issuer(Issuer::with_keys(ISSUER_B, keys_b()))
                .build()
                .unwrap(),
            RESOURCE,
            None,
        ),
    };
    serve_axum(app).await
}

#[derive(Debug, Clone)]
enum Expect {
    /// 200, with exactly these scopes.
    Ok(&'static [&'static str]),
    /// Refused with this status and error code.
    Refused(u16, &'static str),
}

const READ: &[&str] = &["mcp:read"];
const READ_WRITE: &[&str] = &["mcp:read", "mcp:write"];
const E401: Expect = Expect::Refused(401, "invalid_token");
const E403: Expect = Expect::Refused(403, "insufficient_scope");
const E400: Expect = Expect::Refused(400, "invalid_request");

struct Row {
    name: &'static str,
    srv: Srv,
    path: &'static str,
    token: String,
    expect: Expect,
}

fn row(name: &'static str, token: String, expect: Expect) -> Row {
    Row {
        name,
        srv: Srv::Main,
        path: "/read",
        token,
        expect,
    }
}

impl Row {
    fn on(mut self, srv: Srv) -> Self {
        self.srv = srv;
        self
    }
    fn at(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }
}

fn rows() -> Vec<Row> {
    let n = now();
    let ok = Expect::Ok(READ);
    let rw = Expect::Ok(READ_WRITE);
    let valid_ed = jwt(K::Ed).sign();
    let parts: Vec<String> = valid_ed.split('.').map(str::to_owned).collect();
    let (h, p, s) = (&parts[0], &parts[1], &parts[2]);
    let rsa_public_pem = fixture("rsa_public.pem");
    let big_claim = "x".repeat(64 * 1024);

    vec![
        // Valid tokens, one per algorithm.
        row("valid RS256", jwt(K::Rsa).sign(), ok.clone()),
        row("valid ES256", jwt(K::Ec).sign(), ok.clone()),
        row("valid EdDSA", jwt(K::Ed).sign(), ok.clone()),
        row("valid HS256", jwt(K::Hs).sign(), ok.clone()),
        row(
            "valid RS256 without kid (only RS256 key)",
            jwt(K::Rsa).h("kid", Value::Null).sign(),
            ok.clone(),
        ),
        // Time.
        row(
            "expired: exp = now - 10 min",
            jwt(K::Ed).c("exp", n - 600).sign(),
            E401,
        ),
        row(
            "exp = now - 30 s (within 60 s leeway)",
            jwt(K::Ed).c("exp", n - 30).sign(),
            ok.clone(),
        ),
        row("no exp", jwt(K::Ed).c("exp", Value::Null).sign(), E401),
        row(
            "exp not a number",
            jwt(K::Ed).c("exp", (n + 600).to_string()).sign(),
            E401,
        ),
        row(
            "exp = 9999-12-31T23:59:59Z (the latest accepted)",
            jwt(K::Ed).c("exp", 253_402_300_799u64).sign(),
            ok.clone(),
        ),
        // Found by fuzzing: a signed exp past what `SystemTime` holds panicked.
        row(
            "exp past the year 9999 (u64 > i64::MAX)",
            jwt(K::Hs).c("exp", 16_523_839_413_723_587_072u64).sign(),
            E401,
        ),
        row(
            "exp = 9999-12-31T23:59:59Z + 1 s",
            jwt(K::Ed).c("exp", 253_402_300_800u64).sign(),
            E401,
        ),
        row("exp = 1e300", jwt(K::Ed).c("exp", 1e300).sign(), E401),
        row(
            "iat past the year 9999",
            jwt(K::Ed).c("iat", u64::MAX).sign(),
            E401,
        ),
        row(
            "nbf = now + 10 min",
            jwt(K::Ed).c("nbf", n + 600).sign(),
            E401,
        ),
        row(
            "nbf = now - 10 min",
            jwt(K::Ed).c("nbf", n - 600).sign(),
            ok.clone(),
        ),
        row(
            "iat = now + 10 min",
            jwt(K::Ed).c("iat", n + 600).sign(),
            E401,
        ),
        row(
            "iat = now + 30 s (within leeway)",
            jwt(K::Ed).c("iat", n + 30).sign(),
            ok.clone(),
        ),
        // Audience.
        row(
            "wrong aud",
            jwt(K::Ed).c("aud", "https://other.example/mcp").sign(),
            E401,
        ),
        row(
            "aud = sibling path /mcp2",
            jwt(K::Ed).c("aud", "https://mcp.example.com/mcp2").sign(),
            E401,
        ),
        row(
            "aud = our origin only",
            jwt(K::Ed).c("aud", "https://mcp.example.com").sign(),
            E401,
        ),
        row(
            "aud = ours with trailing slash /mcp/",
            jwt(K::Ed).c("aud", "https://mcp.example.com/mcp/").sign(),
            E401,
        ),
        row("no aud", jwt(K::Ed).c("aud", Value::Null).sign(), E401),
        row("aud = []", jwt(K::Ed).c("aud", json!([])).sign(), E401),
        row(
            "aud array containing ours",
            jwt(K::Ed)
                .c("aud", json!(["https://other.example/mcp", RESOURCE]))
                .sign(),
            ok.clone(),
        ),
        row(
            "aud array without ours",
            jwt(K::Ed)
                .c("aud", json!(["https://other.example/mcp", "api://mcp"]))
                .sign(),
            E401,
        ),
        row(
            "aud with upper-case host",
            jwt(K::Ed).c("aud", "https://MCP.EXAMPLE.COM/mcp").sign(),
            ok.clone(),
        ),
        row(
            "aud with upper-case scheme and host",
            jwt(K::Ed).c("aud", "HTTPS://MCP.Example.Com/mcp").sign(),
            ok.clone(),
        ),
        row(
            "aud with explicit default port",
            jwt(K::Ed)
                .c("aud", "https://mcp.example.com:443/mcp")
                .sign(),
            ok.clone(),
        ),
        row(
            "aud with upper-case path",
            jwt(K::Ed).c("aud", "https://mcp.example.com/MCP").sign(),
            E401,
        ),
        row(
            "aud = http:// (plain) of ours",
            jwt(K::Ed).c("aud", "http://mcp.example.com/mcp").sign(),
            E401,
        ),
        // Issuer.
        row(
            "wrong iss",
            jwt(K::Ed).c("iss", "https://evil.example.com").sign(),
            E401,
        ),
        row(
            "iss with trailing slash (exact match only)",
            jwt(K::Ed).c("iss", "https://auth.example.com/").sign(),
            E401,
        ),
        row("no iss", jwt(K::Ed).c("iss", Value::Null).sign(), E401),
        // Algorithms and keys.
        row(
            "alg none, empty signature",
            format!("{}.{p}.", b64_json(&json!({"alg": "none", "typ": "JWT"}))),
            E401,
        ),
        row(
            "alg none with our kid and the original signature",
            format!(
                "{}.{p}.{s}",
                b64_json(&json!({"alg": "none", "typ": "JWT", "kid": "ed-1"}))
            ),
            E401,
        ),
        row(
            "key confusion: HS256 with the RSA public PEM as secret, kid rsa-1",
            jwt(K::Rsa)
                .h("alg", "HS256")
                .signed_with(EncodingKey::from_secret(&rsa_public_pem), Algorithm::HS256)
                .sign(),
            E401,
        ),
        row(
            "key confusion: HS256 with the RSA public PEM as secret, no kid",
            jwt(K::Rsa)
                .h("alg", "HS256")
                .h("kid", Value::Null)
                .signed_with(EncodingKey::from_secret(&rsa_public_pem), Algorithm::HS256)
                .sign(),
            E401,
        ),
        row(
            "RS384 by the RSA key, kid of the RS256-bound key",
            jwt(K::Rsa)
                .h("alg", "RS384")
                .signed_with(K::Rsa.encoding(), Algorithm::RS384)
                .sign(),
            E401,
        ),
        row(
            "PS256 by the RSA key, kid of the RS256-bound key",
            jwt(K::Rsa)
                .h("alg", "PS256")
                .signed_with(K::Rsa.encoding(), Algorithm::PS256)
                .sign(),
            E401,
        ),
        row(
            "EdDSA token naming the ES256 key's kid",
            jwt(K::Ed).h("kid", "ec-1").sign(),
            E401,
        ),
        row(
            "unknown kid",
            jwt(K::Ed).h("kid", "no-such-key").sign(),
            E401,
        ),
        row(
            "HS512 (not on the allow-list)",
            jwt(K::Hs)
                .h("alg", "HS512")
                .signed_with(K::Hs.encoding(), Algorithm::HS512)
                .sign(),
            E401,
        ),
        // Tampering.
        row(
            "tampered payload (scope raised), signature kept",
            with_payload(
                &valid_ed,
                &Value::Object(
                    jwt(K::Ed)
                        .c("scope", "mcp:read mcp:write")
                        .claims
                        .into_iter()
                        .collect(),
                ),
            ),
            E401,
        ),
        row("tampered signature", flip_signature(&valid_ed), E401),
        row("signature removed", format!("{h}.{p}."), E401),
        row(
            "tampered header (kid changed), signature kept",
            format!(
                "{}.{p}.{s}",
                b64_json(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}))
            ),
            E401,
        ),
        // Shape.
        row("two segments", format!("{h}.{p}"), E401),
        row("four segments", format!("{h}.{p}.{s}.{s}"), E401),
        row(
            "five segments (JWE shape)",
            format!("{h}.{p}.{s}.{s}.{s}"),
            E401,
        ),
        row(
            "segments not base64url",
            "eyJ+/~abc.eyJ+/~def.sig+/~ghi".to_owned(),
            E401,
        ),
        row(
            "header not JSON",
            format!("{}.{p}.{s}", b64("not json at all")),
            E401,
        ),
        row(
            "header JSON without alg",
            format!(
                "{}.{p}.{s}",
                b64_json(&json!({"typ": "JWT", "kid": "ed-1"}))
            ),
            E401,
        ),
        row(
            "signed payload that is not JSON",
            sign_raw(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1"}),
                b"not json",
                &K::Ed.encoding(),
                Algorithm::EdDSA,
            ),
            E401,
        ),
        row(
            "signed payload that is a JSON array",
            sign_raw(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1"}),
                b"[1,2,3]",
                &K::Ed.encoding(),
                Algorithm::EdDSA,
            ),
            E401,
        ),
        // Size.
        row(
            "64 KiB token, default 8 KiB header limit",
            flip_signature(&jwt(K::Ed).c("pad", big_claim.as_str()).sign()),
            E400,
        ),
        row(
            "64 KiB token, bad signature, 128 KiB header limit",
            flip_signature(&jwt(K::Ed).c("pad", big_claim.as_str()).sign()),
            E401,
        )
        .on(Srv::BigHeader),
        row(
            "64 KiB junk token, 128 KiB header limit",
            "a".repeat(64 * 1024),
            E401,
        )
        .on(Srv::BigHeader),
        row(
            "64 KiB valid token, 128 KiB header limit",
            jwt(K::Ed).c("pad", big_claim.as_str()).sign(),
            ok.clone(),
        )
        .on(Srv::BigHeader),
        // typ.
        row(
            "typ at+jwt",
            jwt(K::Ed).h("typ", "at+jwt").sign(),
            ok.clone(),
        ),
        row("typ JWT", jwt(K::Ed).h("typ", "JWT").sign(), ok.clone()),
        row(
            "typ absent",
            jwt(K::Ed).h("typ", Value::Null).sign(),
            ok.clone(),
        ),
        row(
            "typ application/at+jwt",
            jwt(K::Ed).h("typ", "application/at+jwt").sign(),
            ok.clone(),
        ),
        row(
            "typ AT+JWT",
            jwt(K::Ed).h("typ", "AT+JWT").sign(),
            ok.clone(),
        ),
        row(
            "typ Application/AT+JWT (media types are case-insensitive)",
            jwt(K::Ed).h("typ", "Application/AT+JWT").sign(),
            ok.clone(),
        ),
        row(
            "typ id_token+jwt",
            jwt(K::Ed).h("typ", "id_token+jwt").sign(),
            E401,
        ),
        row("typ foo", jwt(K::Ed).h("typ", "foo").sign(), E401),
        row(
            "typ application/jwt+foo",
            jwt(K::Ed).h("typ", "application/jwt+foo").sign(),
            E401,
        ),
        // Strict RFC 9068.
        row("strict: typ JWT", jwt(K::Ed).h("typ", "JWT").sign(), E401).on(Srv::Strict),
        row(
            "strict: typ absent",
            jwt(K::Ed).h("typ", Value::Null).sign(),
            E401,
        )
        .on(Srv::Strict),
        row(
            "strict: at+jwt with sub, client_id, iat, jti",
            jwt(K::Ed).sign(),
            ok.clone(),
        )
        .on(Srv::Strict),
        row(
            "strict: application/at+jwt",
            jwt(K::Ed).h("typ", "application/at+jwt").sign(),
            ok.clone(),
        )
        .on(Srv::Strict),
        row(
            "strict: missing jti",
            jwt(K::Ed).c("jti", Value::Null).sign(),
            E401,
        )
        .on(Srv::Strict),
        row(
            "strict: missing client_id",
            jwt(K::Ed).c("client_id", Value::Null).sign(),
            E401,
        )
        .on(Srv::Strict),
        row(
            "strict: missing sub",
            jwt(K::Ed).c("sub", Value::Null).sign(),
            E401,
        )
        .on(Srv::Strict),
        row(
            "strict: missing iat",
            jwt(K::Ed).c("iat", Value::Null).sign(),
            E401,
        )
        .on(Srv::Strict),
        row(
            "non-strict: missing jti",
            jwt(K::Ed).c("jti", Value::Null).sign(),
            ok.clone(),
        ),
        // Header parameters that must not be trusted or are not understood.
        row(
            "crit [exp]",
            jwt(K::Ed).h("crit", json!(["exp"])).sign(),
            E401,
        ),
        row(
            "crit [b64] with b64 false",
            jwt(K::Ed).h("crit", json!(["b64"])).h("b64", false).sign(),
            E401,
        ),
        row(
            "embedded jwk of an attacker key, signed by it, no kid",
            jwt(K::Attacker)
                .h("kid", Value::Null)
                .h("jwk", attacker_jwk())
                .sign(),
            E401,
        ),
        row(
            "embedded jwk of an attacker key, signed by it, our kid",
            jwt(K::Attacker)
                .h("kid", "ed-1")
                .h("jwk", attacker_jwk())
                .sign(),
            E401,
        ),
        row(
            "jku pointing elsewhere, signed by an attacker key",
            jwt(K::Attacker)
                .h("jku", "https://evil.example/jwks.json")
                .sign(),
            E401,
        ),
        row(
            "x5u pointing elsewhere, signed by an attacker key, our kid",
            jwt(K::Attacker)
                .h("kid", "ed-1")
                .h("x5u", "https://evil.example/cert.pem")
                .sign(),
            E401,
        ),
        row(
            "jku pointing elsewhere, signed by our key (header ignored)",
            jwt(K::Ed).h("jku", "https://evil.example/jwks.json").sign(),
            ok.clone(),
        ),
        // Subject.
        row(
            "no sub but client_id (client credentials)",
            jwt(K::Ed).c("sub", Value::Null).sign(),
            ok.clone(),
        ),
        row(
            "neither sub nor client_id nor azp",
            jwt(K::Ed)
                .c("sub", Value::Null)
                .c("client_id", Value::Null)
                .sign(),
            E401,
        ),
        // Scopes.
        row(
            "scope \"mcp:read mcp:write\" on /write",
            jwt(K::Ed).c("scope", "mcp:read mcp:write").sign(),
            rw.clone(),
        )
        .at("/write"),
        row(
            "scope as an array on /write",
            jwt(K::Ed)
                .c("scope", json!(["mcp:read", "mcp:write"]))
                .sign(),
            rw.clone(),
        )
        .at("/write"),
        row(
            "scp array on /write",
            jwt(K::Ed)
                .c("scope", Value::Null)
                .c("scp", json!(["mcp:read", "mcp:write"]))
                .sign(),
            rw.clone(),
        )
        .at("/write"),
        row(
            "scp string on /write",
            jwt(K::Ed)
                .c("scope", Value::Null)
                .c("scp", "mcp:read mcp:write")
                .sign(),
            rw.clone(),
        )
        .at("/write"),
        row(
            "scope mcp:read + scp mcp:write merged",
            jwt(K::Ed).c("scp", json!(["mcp:write"])).sign(),
            rw.clone(),
        )
        .at("/write"),
        row(
            "scope with runs of spaces",
            jwt(K::Ed).c("scope", "  mcp:read   mcp:write ").sign(),
            rw.clone(),
        )
        .at("/write"),
        row(
            "scope mcp:read on /write: missing scope",
            jwt(K::Ed).sign(),
            E403,
        )
        .at("/write"),
        row(
            "no scope at all on /read",
            jwt(K::Ed).c("scope", Value::Null).sign(),
            E403,
        ),
        row(
            "expired token with enough scope on /write: 401 before 403",
            jwt(K::Ed)
                .c("scope", "mcp:read mcp:write")
                .c("exp", n - 600)
                .sign(),
            E401,
        )
        .at("/write"),
        row(
            "scope_claims([permissions]): permissions array",
            jwt(K::Ed)
                .c("scope", Value::Null)
                .c("permissions", json!(["mcp:read", "mcp:write"]))
                .sign(),
            rw.clone(),
        )
        .on(Srv::Permissions)
        .at("/write"),
        row(
            "scope_claims([permissions]): scope claim ignored",
            jwt(K::Ed).c("scope", "mcp:read mcp:write").sign(),
            E403,
        )
        .on(Srv::Permissions),
        // Extra audience.
        row(
            "extra audience api://mcp",
            jwt(K::Ed).c("aud", "api://mcp").sign(),
            ok.clone(),
        )
        .on(Srv::ExtraAud),
        row(
            "extra audience, resource still accepted",
            jwt(K::Ed).sign(),
            ok.clone(),
        )
        .on(Srv::ExtraAud),
        row(
            "extra audience is exact (API://MCP)",
            jwt(K::Ed).c("aud", "API://MCP").sign(),
            E401,
        )
        .on(Srv::ExtraAud),
        row(
            "api://mcp without that audience configured",
            jwt(K::Ed).c("aud", "api://mcp").sign(),
            E401,
        ),
        // claims_check.
        row(
            "claims_check refuses tenant evil",
            jwt(K::Ed).c("tenant", "evil").sign(),
            E401,
        )
        .on(Srv::Check),
        row(
            "claims_check accepts tenant good",
            jwt(K::Ed).c("tenant", "good").sign(),
            ok.clone(),
        )
        .on(Srv::Check),
        // Origin-only resource.
        row(
            "origin resource: aud with trailing slash",
            jwt(K::Ed).c("aud", "https://mcp.example.com/").sign(),
            ok.clone(),
        )
        .on(Srv::Origin),
        row(
            "origin resource: aud without trailing slash",
            jwt(K::Ed).c("aud", "https://mcp.example.com").sign(),
            ok.clone(),
        )
        .on(Srv::Origin),
        row(
            "origin resource: aud with a path",
            jwt(K::Ed).c("aud", RESOURCE).sign(),
            E401,
        )
        .on(Srv::Origin),
        // Several issuers.
        row("multi: issuer B's token", jwt(K::B).sign(), ok.clone()).on(Srv::Multi),
        row("multi: issuer A's token", jwt(K::Ed).sign(), ok.clone()).on(Srv::Multi),
        row(
            "multi: signed by A's key, iss B",
            jwt(K::Ed).c("iss", ISSUER_B).sign(),
            E401,
        )
        .on(Srv::Multi),
        row(
            "multi: signed by B's key, iss A",
            jwt(K::B).c("iss", ISSUER).sign(),
            E401,
        )
        .on(Srv::Multi),
        row("single issuer: issuer B's token", jwt(K::B).sign(), E401),
    ]
}

/// The whole table: every row against its server, each refusal checked for its exact challenge,
/// `Cache-Control: no-store`, JSON body, and that the response echoes no part of the token.
#[tokio::test]
async fn jwt_table() {
    bounded(async {
        let mut servers = Vec::new();
        for srv in ALL_SERVERS {
            servers.push((srv, start(srv).await));
        }
        let server = |srv: Srv| &servers.iter().find(|(s, _)| *s == srv).unwrap().1;
        let mut failures = Vec::new();
        let mut report = Vec::new();
        let rows = rows();
        for row in &rows {
            let got = call(server(row.srv), row.path, &row.token).await;
            let mut problems = Vec::new();
            match &row.expect {
                Expect::Ok(scopes) => {
                    if got.status != 200 {
                        problems.push(format!("status {} ({:?})", got.status, got.challenges));
                    } else {
                        let body = json_body(&got);
                        let want: Vec<&str> = scopes.to_vec();
                        if body["scopes"] != json!(want) {
                            problems.push(format!("scopes {}", body["scopes"]));
                        }
                        if body["method"] != "jwt" {
                            problems.push(format!("method {}", body["method"]));
                        }
                        // Every 200 row is minted by `jwt()`: sub `user-123` (or none, and then
                        // the subject is the client), client_id `client-abc`.
                        if body["subject"] != "user-123" && body["subject"] != "client-abc" {
                            problems.push(format!("subject {}", body["subject"]));
                        }
                        if body["client_id"] != "client-abc" {
                            problems.push(format!("client_id {}", body["client_id"]));
                        }
                    }
                }
                Expect::Refused(status, code) => {
                    let meta = if row.srv == Srv::Origin {
                        ORIGIN_METADATA_URL
                    } else {
                        METADATA_URL
                    };
                    // A 403 also names the advertised scope the token holds (mcp:read), which
                    // every 403 row on /write has.
                    let scope = match (row.path, *status) {
                        ("/write", 403) => "mcp:read mcp:write",
                        ("/write", _) => "mcp:write",
                        _ => "mcp:read",
                    };
                    let challenge = format!(
                        r#"Bearer resource_metadata="{meta}", scope="{scope}", error="{code}""#
                    );
                    if got.status != *status {
                        problems.push(format!("status {}", got.status));
                    }
                    if got.challenges != [challenge.clone()] {
                        problems.push(format!("challenges {:?}", got.challenges));
                    }
                    if got.cache_control.as_deref() != Some("no-store") {
                        problems.push(format!("cache-control {:?}", got.cache_control));
                    }
                    let body: Result<Value, _> = serde_json::from_str(&got.body);
                    if body.as_ref().ok() != Some(&json!({"error": code})) {
                        problems.push(format!("body {}", got.body));
                    }
                    if let Some(echo) = echoed(&row.token, &got) {
                        problems.push(format!("the response echoes {echo:?} of the token"));
                    }
                }
            }
            let expect = match &row.expect {
                Expect::Ok(_) => "200".to_owned(),
                Expect::Refused(s, c) => format!("{s} {c}"),
            };
            let result = if problems.is_empty() {
                "ok".to_owned()
            } else {
                format!("FAIL: {}", problems.join("; "))
            };
            report.push(format!(
                "| {} | {:?} {} | {} | {} |",
                row.name, row.srv, row.path, expect, result
            ));
            if !problems.is_empty() {
                failures.push(format!("{}: {}", row.name, problems.join("; ")));
            }
        }
        println!("| row | server | expected | result |\n|---|---|---|---|");
        for line in &report {
            println!("{line}");
        }
        println!("{} rows, {} failed", rows.len(), failures.len());
        assert!(failures.is_empty(), "failed rows:\n{}", failures.join("\n"));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The identity handed to handlers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn auth_info_carries_the_token_claims() {
    bounded(async {
        let server = serve(builder().build().unwrap()).await;
        let exp = now() + 900;

        // Minted with jsonwebtoken's own `encode` and `Header`.
        install();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ec-1".into());
        header.typ = Some("at+jwt".into());
        let claims = json!({
            "iss": ISSUER, "aud": [RESOURCE], "sub": "alice", "client_id": "the-client",
            "azp": "not-this-one", "exp": exp, "iat": now(), "jti": "j-1",
            "scope": "mcp:read extra:thing", "tenant": "acme", "roles": ["admin", "dev"],
        });
        let token = jsonwebtoken::encode(&header, &claims, &K::Ec.encoding()).unwrap();
        let got = call(&server, "/read", &token).await;
        assert_eq!(got.status, 200, "{}", got.body);
        let body = json_body(&got);
        assert_eq!(body["subject"], "alice");
        assert_eq!(body["method"], AuthMethod::Jwt.as_str());
        assert_eq!(body["scopes"], json!(["extra:thing", "mcp:read"]));
        assert_eq!(body["client_id"], "the-client");
        assert_eq!(body["issuer"], ISSUER);
        assert_eq!(body["expires_at"], exp);
        assert_eq!(body["principal"], json!([ISSUER, "alice"]));
        assert_eq!(body["claims"], claims);
        assert_eq!(
            serde_json::from_value::<MyClaims>(body["typed"].clone()).unwrap(),
            MyClaims {
                sub: "alice".into(),
                exp,
                tenant: Some("acme".into()),
                roles: Some(vec!["admin".into(), "dev".into()]),
            }
        );

        // client_id falls back to azp.
        let token = jwt(K::Ed)
            .c("client_id", Value::Null)
            .c("azp", "azp-client")
            .sign();
        let got = call(&server, "/read", &token).await;
        assert_eq!(got.status, 200);
        let body = json_body(&got);
        assert_eq!(body["subject"], "user-123");
        assert_eq!(body["client_id"], "azp-client");

        // Neither: no client_id; the typed claims without optional fields.
        let token = jwt(K::Ed).c("client_id", Value::Null).sign();
        let body = json_body(&call(&server, "/read", &token).await);
        assert_eq!(body["client_id"], Value::Null);
        assert_eq!(body["typed"]["tenant"], Value::Null);

        // A client-credentials token: no sub, the subject is the client.
        let token = jwt(K::Ed).c("sub", Value::Null).sign();
        let body = json_body(&call(&server, "/read", &token).await);
        assert_eq!(body["subject"], "client-abc");
        assert_eq!(body["client_id"], "client-abc");
        assert_eq!(body["typed"], Value::Null, "MyClaims needs sub");

        // Issuer B's identity names issuer B.
        let multi = serve_axum(app(
            builder()
                .issuer(Issuer::with_keys(ISSUER_B, keys_b()))
                .build()
                .unwrap(),
            RESOURCE,
            None,
        ))
        .await;
        let body = json_body(&call(&multi, "/read", &jwt(K::B).sign()).await);
        assert_eq!(body["issuer"], ISSUER_B);
        assert_eq!(body["principal"], json!([ISSUER_B, "user-123"]));
    })
    .await;
}

/// The identity keeps the subject and the client as slices of the decoded claims when it can,
/// and as strings of their own when a claim is written with escapes: both read the same.
#[tokio::test]
async fn a_subject_and_client_written_with_escapes_read_as_their_text_with_the_claims_whole() {
    bounded(async {
        install();
        let n = now();
        let payload = format!(
            r#"{{"iss":"{ISSUER}","aud":"{RESOURCE}","sub":"al\u0069ce","client_id":"c\"1",
               "exp":{},"iat":{n},"scope":"mcp:read","x":"y"}}"#,
            n + 600
        );
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": K::Ed.kid()});
        let token = sign_raw(
            &header,
            payload.as_bytes(),
            &K::Ed.encoding(),
            Algorithm::EdDSA,
        );
        let claims: Map<String, Value> = serde_json::from_str(&payload).unwrap();
        // Claims kept as text, and claims parsed already for a check of your own.
        let plain = builder().build().unwrap();
        let checked = builder().claims_check(|_| Ok(())).build().unwrap();
        for verifier in [plain, checked] {
            let info = verifier.verify_token(&token).await.unwrap();
            assert_eq!(info.subject(), "alice");
            assert_eq!(info.client_id(), Some("c\"1"));
            assert_eq!(info.claims(), Some(&claims));
            assert!(info.scopes().contains("mcp:read"));
        }
        // Unescaped: slices of the claims.
        let info = plain_verifier()
            .verify_token(&jwt(K::Ed).sign())
            .await
            .unwrap();
        assert_eq!(
            (info.subject(), info.client_id()),
            ("user-123", Some("client-abc"))
        );
        assert_eq!(info.claims().unwrap()["sub"], "user-123");
    })
    .await;
}

fn plain_verifier() -> JwtVerifier {
    builder().build().unwrap()
}

/// The internal reasons (logged, never sent) of some refusals, through `verify_token`.
#[tokio::test]
async fn refusal_reasons() {
    bounded(async {
        let v = builder().build().unwrap();
        let n = now();
        let cases = [
            (jwt(K::Ed).c("exp", n - 600).sign(), Invalid::Expired),
            (jwt(K::Ed).c("nbf", n + 600).sign(), Invalid::NotYetValid),
            (jwt(K::Ed).c("iat", n + 600).sign(), Invalid::NotYetValid),
            (
                jwt(K::Ed).c("aud", "https://other.example").sign(),
                Invalid::WrongAudience,
            ),
            (
                jwt(K::Ed).c("iss", "https://evil.example").sign(),
                Invalid::WrongIssuer,
            ),
            (jwt(K::Ed).h("kid", "nope").sign(), Invalid::UnknownKey),
            (flip_signature(&jwt(K::Ed).sign()), Invalid::BadSignature),
            (jwt(K::Ed).h("typ", "foo").sign(), Invalid::Unacceptable),
            (
                jwt(K::Ed).h("crit", json!(["exp"])).sign(),
                Invalid::Unacceptable,
            ),
            ("a.b".to_owned(), Invalid::Malformed),
        ];
        for (token, reason) in cases {
            assert_eq!(
                v.verify_token(&token).await.unwrap_err(),
                Rejection::Invalid(reason),
                "{reason:?}"
            );
        }
        let info = v.verify_token(&jwt(K::Rsa).sign()).await.unwrap();
        assert_eq!(info.subject(), "user-123");
    })
    .await;
}

#[tokio::test]
async fn a_header_read_once_spares_no_other_check() {
    // The verifier remembers the header of an accepted token (its exact segment) and skips
    // reading it next time: every other check must still run on tokens that share it.
    bounded(async {
        let v = builder().no_token_cache().build().unwrap();
        let n = now();
        let good = jwt(K::Ed).sign();
        v.verify_token(&good).await.unwrap();
        let header = good.split('.').next().unwrap();
        let cases = [
            (jwt(K::Ed).c("exp", n - 600).sign(), Invalid::Expired),
            (jwt(K::Ed).c("nbf", n + 600).sign(), Invalid::NotYetValid),
            (
                jwt(K::Ed).c("aud", "https://other.example").sign(),
                Invalid::WrongAudience,
            ),
            (flip_signature(&jwt(K::Ed).sign()), Invalid::BadSignature),
            (
                with_payload(&good, &json!({"sub": "someone-else"})),
                Invalid::BadSignature,
            ),
            (format!("{header}.e30.x.y"), Invalid::Malformed),
            (format!("{header}.%%%.sig"), Invalid::Malformed),
        ];
        for (token, reason) in cases {
            assert!(token.starts_with(&format!("{header}.")), "{reason:?}");
            assert_eq!(
                v.verify_token(&token).await.unwrap_err(),
                Rejection::Invalid(reason),
                "{reason:?}"
            );
        }
        // And it keeps accepting what it accepted.
        assert_eq!(v.verify_token(&good).await.unwrap().subject(), "user-123");
        v.verify_token(&jwt(K::Ed).sign()).await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The verified-token cache
// ---------------------------------------------------------------------------------------------

/// A verifier whose `claims_check` counts full verifications.
fn counting(b: JwtVerifierBuilder) -> (JwtVerifier, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let v = b
        .claims_check(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .build()
        .unwrap();
    (v, count)
}

#[tokio::test]
async fn cache_answers_repeated_tokens() {
    bounded(async {
        let token = jwt(K::Rsa).sign();

        let (v, count) = counting(builder());
        let server = serve(v.clone()).await;
        for _ in 0..10 {
            assert_eq!(call(&server, "/read", &token).await.status, 200);
        }
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "verified once, then cached"
        );
        assert_eq!(v.cache_usage().unwrap().0, 1);
        // The cached identity still goes through the scope policy of each route.
        assert_eq!(call(&server, "/write", &token).await.status, 403);
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let (v, count) = counting(builder().no_token_cache());
        let server = serve(v.clone()).await;
        for _ in 0..10 {
            assert_eq!(call(&server, "/read", &token).await.status, 200);
        }
        assert_eq!(
            count.load(Ordering::SeqCst),
            10,
            "no cache: verified every time"
        );
        assert_eq!(v.cache_usage(), None);

        // Refusals are not cached: an invalid token is checked every time.
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let v = builder()
            .claims_check(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                Err("never")
            })
            .build()
            .unwrap();
        let server = serve(v.clone()).await;
        for _ in 0..3 {
            assert_eq!(call(&server, "/read", &token).await.status, 401);
        }
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert_eq!(v.cache_usage().unwrap().0, 0);
    })
    .await;
}

#[tokio::test]
async fn cache_entry_never_outlives_exp() {
    bounded(async {
        let (v, count) = counting(builder().leeway(Duration::ZERO));
        let server = serve(v).await;
        let token = jwt(K::Ed).c("exp", now() + 2).sign();
        assert_eq!(call(&server, "/read", &token).await.status, 200);
        assert_eq!(call(&server, "/read", &token).await.status, 200);
        assert_eq!(count.load(Ordering::SeqCst), 1, "second request from the cache");
        tokio::time::sleep(Duration::from_millis(3200)).await;
        let got = call(&server, "/read", &token).await;
        assert_eq!(got.status, 401, "the cache must not outlive exp");
        assert_eq!(
            got.challenges,
            [format!(
                r#"Bearer resource_metadata="{METADATA_URL}", scope="mcp:read", error="invalid_token""#
            )]
        );
    })
    .await;
}

/// The memory bound holds for tokens whose claims take far more once parsed than their length
/// suggests: `[0,0,…]` is 2 bytes an element in the token and a whole JSON value in memory.
#[tokio::test]
async fn cache_counts_what_parsed_claims_take_not_the_token_length() {
    bounded(async {
        const ELEMENTS: usize = 4_000;
        const BUDGET: usize = 4 << 20;
        let config = TokenCacheConfig {
            max_entries: 10_000,
            max_bytes: BUDGET,
        };
        let v = builder().token_cache(config).build().unwrap();
        for i in 0..64 {
            let token = jwt(K::Hs)
                .c("sub", format!("user-{i}"))
                .c("groups", vec![0; ELEMENTS])
                .sign();
            assert!(token.len() < 12 * 1024);
            v.verify_token(&token).await.unwrap();
        }
        let (entries, bytes) = v.cache_usage().unwrap();
        assert!(entries > 0, "the cache is used");
        // What each entry keeps at the very least: the array's values.
        let floor = entries * ELEMENTS * std::mem::size_of::<Value>();
        assert!(
            bytes >= floor,
            "{bytes} bytes counted for {entries} entries holding at least {floor}"
        );
        assert!(bytes <= BUDGET, "{bytes} bytes");
        assert!(
            entries < 64,
            "{entries} entries of over 128 KiB within 4 MiB"
        );
    })
    .await;
}

#[tokio::test]
async fn cache_is_bounded() {
    bounded(async {
        // By entries: 32 → 2 per shard × 16 shards.
        let config = TokenCacheConfig {
            max_entries: 32,
            max_bytes: 1 << 20,
        };
        let v = builder().token_cache(config).build().unwrap();
        let server = serve(v.clone()).await;
        let http = client();
        for i in 0..1000 {
            let token = jwt(K::Hs).c("sub", format!("user-{i}")).sign();
            let res = http
                .get(server.url("/read"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        let (entries, bytes) = v.cache_usage().unwrap();
        assert!(entries > 0, "the cache is used");
        assert!(entries <= 32, "{entries} entries");
        assert!(bytes <= 1 << 20, "{bytes} bytes");

        // By memory: 64 KiB, with room for 10 000 entries.
        let config = TokenCacheConfig {
            max_entries: 10_000,
            max_bytes: 64 * 1024,
        };
        let v = builder().token_cache(config).build().unwrap();
        let server = serve(v.clone()).await;
        for i in 0..1000 {
            let token = jwt(K::Hs).c("sub", format!("user-{i}")).sign();
            let res = http
                .get(server.url("/read"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        let (entries, bytes) = v.cache_usage().unwrap();
        assert!(entries > 0);
        assert!(bytes <= 64 * 1024, "{bytes} bytes in {entries} entries");
        assert!(entries < 1000, "{entries} entries within 64 KiB");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Crypto backend and configuration
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn crypto_provider_install_is_idempotent() {
    bounded(async {
        mcp_server_auth::jwt::install_crypto_provider().unwrap();
        mcp_server_auth::jwt::install_crypto_provider().unwrap();
        let v = builder().build().unwrap();
        for k in [K::Rsa, K::Ec, K::Ed, K::Hs] {
            let info = v.verify_token(&jwt(k).sign()).await.unwrap();
            assert_eq!(info.subject(), "user-123", "{k:?}");
        }
        let server = serve(v).await;
        assert_eq!(call(&server, "/read", &jwt(K::Ec).sign()).await.status, 200);
        mcp_server_auth::jwt::install_crypto_provider().unwrap();
        assert_eq!(
            call(&server, "/read", &jwt(K::Rsa).sign()).await.status,
            200
        );
    })
    .await;
}

#[test]
fn configuration_errors() {
    let resource = || ResourceUrl::parse(RESOURCE).unwrap();
    assert_eq!(
        JwtVerifier::builder(resource()).build().unwrap_err(),
        JwtConfigError::NoIssuer
    );
    assert_eq!(
        JwtVerifier::builder(resource())
            .issuer(Issuer::with_keys("", keys_a()))
            .build()
            .unwrap_err(),
        JwtConfigError::EmptyIssuer
    );
    assert_eq!(
        builder()
            .leeway(Duration::from_secs(301))
            .build()
            .unwrap_err(),
        JwtConfigError::Leeway(301)
    );
    assert!(builder().leeway(Duration::from_secs(300)).build().is_ok());
    assert_eq!(
        builder().algorithms([]).build().unwrap_err(),
        JwtConfigError::NoAlgorithms
    );
    assert_eq!(
        builder().scope_claims([""]).build().unwrap_err(),
        JwtConfigError::ScopeClaim
    );
    assert_eq!(
        KeySet::new()
            .add_hmac_secret(None, Algorithm::HS256, b"short")
            .unwrap_err(),
        KeyError::WeakSecret
    );
    assert_eq!(
        KeySet::new()
            .add_hmac_secret(None, Algorithm::RS256, HMAC_SECRET)
            .unwrap_err(),
        KeyError::NotHmac(Algorithm::RS256)
    );
    assert!(
        KeySet::new()
            .add_pem(None, Algorithm::ES256, &fixture("rsa_public.pem"))
            .is_err(),
        "an RSA PEM is not an EC key"
    );
}

/// Two trusted issuers whose keys share a `kid` (kids are only unique within one JWKS), or
/// carry none: each issuer's valid tokens must still be accepted, and neither issuer's key may
/// vouch for a token naming the other.
///
/// Regression test: `Inner::find_key` (src/jwt/mod.rs) used to return the key of the FIRST
/// issuer with a key for (`kid`, `alg`), whatever the token's `iss`, so issuer B's valid tokens
/// were refused (401, bad signature) when its kid collided with issuer A's or was absent. The
/// key is now looked up among the keys of the issuer the token names.
#[tokio::test]
async fn multi_issuer_key_ids_are_per_issuer() {
    bounded(async {
        let mut wrong = Vec::new();
        for kid in [Some("k1"), None] {
            let a = KeySet::new()
                .add_pem(kid, Algorithm::ES256, &fixture("ec_public.pem"))
                .unwrap();
            let b = KeySet::new()
                .add_pem(kid, Algorithm::ES256, &fixture("issuer_b_ec_public.pem"))
                .unwrap();
            let v = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
                .issuer(Issuer::with_keys(ISSUER, a))
                .issuer(Issuer::with_keys(ISSUER_B, b))
                .build()
                .unwrap();
            let server = serve(v).await;
            let kid_value = kid.map_or(Value::Null, Value::from);
            let cases = [
                ("A's token", jwt(K::Ec), 200),
                ("B's token", jwt(K::B), 200),
                ("A's key, iss B", jwt(K::Ec).c("iss", ISSUER_B), 401),
                ("B's key, iss A", jwt(K::B).c("iss", ISSUER), 401),
            ];
            for (name, token, want) in cases {
                let token = token.h("kid", kid_value.clone()).sign();
                let got = call(&server, "/read", &token).await.status;
                if got != want {
                    wrong.push(format!("kid {kid:?}, {name}: {got}, expected {want}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    })
    .await;
}
