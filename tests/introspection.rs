//! Opaque access tokens by RFC 7662 introspection, over real sockets: an MCP endpoint behind
//! the auth layer on 127.0.0.1, and an introspection endpoint of our own
//! (`common/introspection_server.rs`) that counts its calls and fails on demand. Then the
//! example server (`examples/quickstart.rs`) configured from the environment in introspection
//! mode, its endpoint found by discovery.
#![cfg(all(feature = "introspection", feature = "aws-lc-rs"))]

mod common;
#[path = "common/introspection_server.rs"]
mod introspection_server;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Router, routing::post};
use introspection_server::{Endpoint, Expect, Fault, hanging_server, resetting_server};
use jsonwebtoken::{EncodingKey, Header};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ResourceUrl, ScopeRequirement,
    config::EnvConfig,
    introspection::{ClientAuth, IntrospectionOptions, IntrospectionVerifier},
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
};
use serde_json::{Value, json};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const CLIENT_ID: &str = "mcp-server";
const SECRET: &str = "introspection-secret-Xk4q";
const HMAC: &[u8] = b"introspection-tests-hmac-key-0123456789abcdef";
/// The `Retry-After` the tests configure.
const RETRY_AFTER: &str = "7";

/// Every test is bounded.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test took more than 60 s")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An answer that passes every rule.
fn active() -> Value {
    json!({
        "active": true,
        "sub": "user-1",
        "client_id": "client-1",
        "username": "alice",
        "scope": "mcp:read mcp:write",
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": now() + 600,
        "token_type": "Bearer",
    })
}

fn basic() -> Expect {
    Expect::Basic {
        id: CLIENT_ID.to_owned(),
        secret: SECRET.to_owned(),
    }
}

/// Short timeouts, a `Retry-After` of 7 s.
fn options() -> IntrospectionOptions {
    IntrospectionOptions {
        timeout: Duration::from_millis(300),
        retry_after: Duration::from_secs(7),
        ..Default::default()
    }
}

fn verifier_with(
    url: &str,
    auth: ClientAuth,
    options: IntrospectionOptions,
) -> IntrospectionVerifier {
    IntrospectionVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap(), auth)
        .endpoint(url)
        .issuer(ISSUER)
        .options(options)
        .build()
        .unwrap()
}

fn verifier(endpoint: &Endpoint) -> IntrospectionVerifier {
    verifier_with(
        &endpoint.url(),
        ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
        options(),
    )
}

/// The MCP endpoint behind the auth layer (every request needs `mcp:read`), and a client.
struct Mcp {
    server: common::TestServer,
    client: reqwest::Client,
}

async fn mcp<V: mcp_server_auth::Verifier>(verifier: V) -> Mcp {
    let layer = AuthLayer::builder(verifier)
        .required_scopes(ScopeRequirement::all_of(["mcp:read"]).unwrap())
        .build()
        .unwrap();
    let who = |who: AuthInfo| async move {
        format!(
            "{} {} {}",
            who.subject(),
            who.username().unwrap_or("-"),
            who.method()
        )
    };
    let app = Router::new().route("/mcp", post(who)).layer(layer);
    Mcp {
        server: common::serve_axum(app).await,
        client: common::client(),
    }
}

#[derive(Debug, PartialEq)]
struct Reply {
    status: u16,
    challenge: String,
    retry_after: Option<String>,
    body: String,
}

async fn call(mcp: &Mcp, token: &str) -> Reply {
    let res = mcp
        .client
        .post(mcp.server.url("/mcp"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name| {
        res.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (challenge, retry_after) = (
        header(http::header::WWW_AUTHENTICATE).unwrap_or_default(),
        header(http::header::RETRY_AFTER),
    );
    Reply {
        status: res.status().as_u16(),
        challenge,
        retry_after,
        body: res.text().await.unwrap(),
    }
}

const INVALID_TOKEN: &str = r#"Bearer realm="mcp", scope="mcp:read", error="invalid_token""#;
const INSUFFICIENT: &str = r#"Bearer realm="mcp", scope="mcp:read", error="insufficient_scope""#;

fn assert_unavailable(r: &Reply, what: &str) {
    assert_eq!(r.status, 503, "{what}: {r:?}");
    assert_eq!(r.retry_after.as_deref(), Some(RETRY_AFTER), "{what}: {r:?}");
    assert_eq!(r.challenge, "", "{what}: {r:?}");
}

#[tokio::test]
async fn every_acceptance_rule_has_its_exact_status_and_challenge() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        let mcp = mcp(verifier(&endpoint)).await;
        let with = |patch: Value| {
            let mut answer = active();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    answer.as_object_mut().unwrap().remove(k);
                } else {
                    answer[k] = v.clone();
                }
            }
            answer
        };
        let rows: Vec<(&str, Value, u16, &str)> = vec![
            ("every rule met", active(), 200, ""),
            (
                "aud an array naming us",
                with(json!({"aud": ["https://other.example/mcp", RESOURCE]})),
                200,
                "",
            ),
            (
                "aud with host in capitals",
                with(json!({"aud": "https://MCP.example.com/mcp"})),
                200,
                "",
            ),
            ("nbf past", with(json!({"nbf": now() - 10})), 200, ""),
            (
                "token_type access_token",
                with(json!({"token_type": "access_token"})),
                200,
                "",
            ),
            (
                "active the string \"true\"",
                with(json!({"active": "true"})),
                401,
                INVALID_TOKEN,
            ),
            ("active 1", with(json!({"active": 1})), 401, INVALID_TOKEN),
            (
                "active missing",
                with(json!({"active": null})),
                401,
                INVALID_TOKEN,
            ),
            ("active false", json!({"active": false}), 401, INVALID_TOKEN),
            (
                "aud missing",
                with(json!({"aud": null})),
                401,
                INVALID_TOKEN,
            ),
            (
                "aud wrong",
                with(json!({"aud": "https://other.example.com/mcp"})),
                401,
                INVALID_TOKEN,
            ),
            (
                "aud a prefix of ours",
                with(json!({"aud": "https://mcp.example.com/mc"})),
                401,
                INVALID_TOKEN,
            ),
            (
                "aud an array without us",
                with(json!({"aud": ["https://a.example/mcp", "b"]})),
                401,
                INVALID_TOKEN,
            ),
            (
                "iss wrong",
                with(json!({"iss": "https://evil.example.com"})),
                401,
                INVALID_TOKEN,
            ),
            (
                "exp past with active true",
                with(json!({"exp": now() - 3600})),
                401,
                INVALID_TOKEN,
            ),
            (
                "exp missing",
                with(json!({"exp": null})),
                401,
                INVALID_TOKEN,
            ),
            (
                "exp a string",
                with(json!({"exp": (now() + 600).to_string()})),
                401,
                INVALID_TOKEN,
            ),
            (
                "nbf future",
                with(json!({"nbf": now() + 3600})),
                401,
                INVALID_TOKEN,
            ),
            (
                "token_type refresh_token",
                with(json!({"token_type": "refresh_token"})),
                401,
                INVALID_TOKEN,
            ),
            (
                "cnf (a bound token)",
                with(json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})),
                401,
                INVALID_TOKEN,
            ),
            (
                "cnf x5t#S256 (bound to a certificate nobody compares)",
                with(json!({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}})),
                401,
                INVALID_TOKEN,
            ),
            (
                "neither sub nor client_id",
                with(json!({"sub": null, "client_id": null})),
                401,
                INVALID_TOKEN,
            ),
            (
                "without the required scope",
                with(json!({"scope": "mcp:write"})),
                403,
                INSUFFICIENT,
            ),
        ];
        for (i, (label, answer, status, challenge)) in rows.iter().enumerate() {
            let token = format!("opaque-rule-{i}");
            endpoint.answer(&token, answer.clone());
            let before = endpoint.calls();
            // Twice: the second answer comes from the cache, and says the same.
            for round in ["first", "cached"] {
                let reply = call(&mcp, &token).await;
                assert_eq!(reply.status, *status, "{label} ({round}): {reply:?}");
                assert_eq!(reply.challenge, *challenge, "{label} ({round}): {reply:?}");
                assert_eq!(reply.retry_after, None, "{label} ({round})");
            }
            assert_eq!(
                endpoint.calls() - before,
                1,
                "{label}: one call, then the cache"
            );
        }
        // The identity: `sub`, the username, the method.
        let reply = call(&mcp, "opaque-rule-0").await;
        assert_eq!(reply.body, "user-1 alice introspection");
        // The call carried the token, its hint, and no client credentials in the form.
        let form = endpoint.last_form();
        assert_eq!(
            form.get("token_type_hint").map(String::as_str),
            Some("access_token")
        );
        assert!(
            form.get("token")
                .is_some_and(|t| t.starts_with("opaque-rule-"))
        );
        assert!(!form.contains_key("client_secret"));
    })
    .await;
}

#[tokio::test]
async fn an_answer_without_aud_is_accepted_only_after_an_explicit_opt_out() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        let mut answer = active();
        answer.as_object_mut().unwrap().remove("aud");
        endpoint.answer("opaque-no-aud", answer);
        let build = |opt_out: bool| {
            IntrospectionVerifier::builder(
                ResourceUrl::parse(RESOURCE).unwrap(),
                ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
            )
            .endpoint(endpoint.url())
            .allow_missing_audience(opt_out)
            .build()
            .unwrap()
        };
        let refused = mcp(build(false)).await;
        assert_eq!(call(&refused, "opaque-no-aud").await.status, 401);
        let accepted = mcp(build(true)).await;
        assert_eq!(call(&accepted, "opaque-no-aud").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_failing_endpoint_is_503_with_retry_after_every_time_and_never_401() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        endpoint.answer("opaque-good", active());
        let server = mcp(verifier(&endpoint)).await;
        for fault in [
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(401),
            Fault::Status(403),
            Fault::Status(400),
            Fault::Garbage,
            Fault::Oversize,
            Fault::Redirect,
        ] {
            endpoint.set_fault(fault);
            let before = endpoint.calls();
            for _ in 0..3 {
                assert_unavailable(&call(&server, "opaque-good").await, &format!("{fault:?}"));
            }
            // Failures are not cached: each request asked once, no more.
            assert_eq!(endpoint.calls() - before, 3, "{fault:?}");
        }
        assert_eq!(endpoint.elsewhere(), 0, "a redirect was followed");
        // Slow: the answer comes after the timeout.
        endpoint.set_fault(Fault::None);
        endpoint.set_delay(Duration::from_millis(800));
        let before = endpoint.calls();
        for _ in 0..2 {
            assert_unavailable(&call(&server, "opaque-good").await, "slow");
        }
        assert_eq!(endpoint.calls() - before, 2);
        // Our own credentials refused (a wrong secret): 503, not the client's fault.
        endpoint.set_delay(Duration::ZERO);
        let wrong = mcp_with_secret(&endpoint, "not-the-secret").await;
        assert_unavailable(&call(&wrong, "opaque-good").await, "wrong client secret");
        // Back to normal: accepted at once (nothing of the failures was cached).
        assert_eq!(call(&server, "opaque-good").await.status, 200);

        // Hang, reset, nothing listening.
        let (hang, hung) = hanging_server().await;
        let (reset, resets) = resetting_server().await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}/introspect", dead.local_addr().unwrap());
        drop(dead);
        for (label, url, connections) in [
            ("hang", hang.url("/introspect"), Some(hung)),
            ("reset", reset.url("/introspect"), Some(resets)),
            ("nothing listening", dead_url, None),
        ] {
            let v = verifier_with(
                &url,
                ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
                options(),
            );
            let faulty = mcp(v).await;
            for _ in 0..3 {
                assert_unavailable(&call(&faulty, "opaque-good").await, label);
            }
            if let Some(count) = connections {
                let n = count.load(Ordering::SeqCst);
                assert!(
                    (1..=3).contains(&n),
                    "{label}: {n} connections for 3 requests"
                );
            }
        }
    })
    .await;
}

async fn mcp_with_secret(endpoint: &Endpoint, secret: &str) -> Mcp {
    mcp(verifier_with(
        &endpoint.url(),
        ClientAuth::client_secret_basic(CLIENT_ID, secret),
        options(),
    ))
    .await
}

#[tokio::test]
async fn fifty_requests_with_one_token_make_one_call() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        endpoint.answer("opaque-fifty", active());
        let mcp = mcp(verifier(&endpoint)).await;
        for _ in 0..50 {
            assert_eq!(call(&mcp, "opaque-fifty").await.status, 200);
        }
        assert_eq!(endpoint.calls(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_first_requests_with_one_new_token_make_one_call() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        endpoint.answer("opaque-hundred", active());
        // The answer takes a while, so that the requests overlap it.
        endpoint.set_delay(Duration::from_millis(100));
        let mcp = Arc::new(mcp(verifier(&endpoint)).await);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let mcp = mcp.clone();
                tokio::spawn(async move { call(&mcp, "opaque-hundred").await.status })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        assert_eq!(endpoint.calls(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_made_up_tokens_are_all_refused_within_the_call_cap_and_the_cache_bounds() {
    bounded(async {
        const TOKENS: usize = 10_000;
        const CAP: usize = 4;
        const MAX_ENTRIES: usize = 1_000;
        let endpoint = Endpoint::start(basic()).await;
        endpoint.set_delay(Duration::from_millis(2));
        let verifier = verifier_with(
            &endpoint.url(),
            ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
            IntrospectionOptions {
                max_concurrent_calls: CAP,
                max_entries: MAX_ENTRIES,
                max_bytes: 1 << 20,
                ..options()
            },
        );
        let mcp = Arc::new(mcp(verifier.clone()).await);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // 64 clients, each sending made-up tokens until all are sent.
        let workers: Vec<_> = (0..64)
            .map(|_| {
                let (mcp, next) = (mcp.clone(), next.clone());
                tokio::spawn(async move {
                    let (mut refused, mut busy) = (0, 0);
                    for _ in 0..TOKENS {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= TOKENS {
                            break;
                        }
                        let reply = call(&mcp, &format!("made-up-{i}")).await;
                        match reply.status {
                            401 => refused += 1,
                            503 => busy += 1,
                            other => panic!("made-up token got {other}: {reply:?}"),
                        }
                    }
                    (refused, busy)
                })
            })
            .collect();
        let (mut refused, mut busy) = (0, 0);
        for worker in workers {
            let (r, b) = worker.await.unwrap();
            refused += r;
            busy += b;
        }
        assert_eq!(refused + busy, TOKENS);
        assert!(refused > 0, "no token was introspected at all");
        assert!(
            endpoint.max_in_air() <= CAP,
            "{} calls at once",
            endpoint.max_in_air()
        );
        assert_eq!(endpoint.calls(), refused, "a busy refusal made a call");
        let (entries, bytes) = verifier.cache_usage();
        assert!(
            entries <= MAX_ENTRIES && bytes <= 1 << 20,
            "{entries} entries, {bytes} B"
        );
    })
    .await;
}

#[tokio::test]
async fn a_client_secret_with_colon_percent_plus_and_non_ascii_letters_authenticates() {
    bounded(async {
        const ODD_SECRET: &str = "a:b%25c+d e/é日本-Ω";
        const ODD_ID: &str = "client:1+é";
        for (expect, auth) in [
            (
                Expect::Basic {
                    id: ODD_ID.to_owned(),
                    secret: ODD_SECRET.to_owned(),
                },
                ClientAuth::client_secret_basic(ODD_ID, ODD_SECRET),
            ),
            (
                Expect::Post {
                    id: ODD_ID.to_owned(),
                    secret: ODD_SECRET.to_owned(),
                },
                ClientAuth::client_secret_post(ODD_ID, ODD_SECRET),
            ),
        ] {
            let method = auth.method();
            let endpoint = Endpoint::start(expect).await;
            endpoint.answer("opaque-odd", active());
            let mcp = mcp(verifier_with(&endpoint.url(), auth, options())).await;
            let reply = call(&mcp, "opaque-odd").await;
            assert_eq!(reply.status, 200, "{method}: {reply:?}");
        }
    })
    .await;
}

fn jwt(claims: &Value, secret: &[u8]) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn jwt_claims(iss: &str, exp: u64) -> Value {
    json!({"iss": iss, "aud": RESOURCE, "sub": "jwt-user", "scope": "mcp:read", "exp": exp})
}

/// Introspection beside a JWT verifier for [`ISSUER`] (HS256, key `k1`).
fn side_by_side(endpoint: &Endpoint) -> IntrospectionVerifier {
    let keys = KeySet::new()
        .add_hmac_secret(Some("k1"), Algorithm::HS256, HMAC)
        .unwrap();
    let jwt = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(Issuer::with_keys(ISSUER, keys))
        .build()
        .unwrap();
    IntrospectionVerifier::builder(
        ResourceUrl::parse(RESOURCE).unwrap(),
        ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
    )
    .endpoint(endpoint.url())
    .issuer(ISSUER)
    .jwt(jwt)
    .options(options())
    .build()
    .unwrap()
}

#[tokio::test]
async fn a_jwt_from_a_configured_issuer_is_judged_locally_and_never_introspected() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        let mcp = mcp(side_by_side(&endpoint)).await;
        let good = jwt(&jwt_claims(ISSUER, now() + 600), HMAC);
        let bad_signature = jwt(
            &jwt_claims(ISSUER, now() + 600),
            b"another-key-0123456789abcdef-0123456789",
        );
        let expired = jwt(&jwt_claims(ISSUER, now() - 3600), HMAC);
        // Even were the endpoint to vouch for them, they are not asked about.
        for token in [&good, &bad_signature, &expired] {
            endpoint.answer(token, active());
        }
        for _ in 0..2 {
            let reply = call(&mcp, &good).await;
            assert_eq!((reply.status, reply.body.as_str()), (200, "jwt-user - jwt"));
        }
        for token in [&bad_signature, &expired] {
            let reply = call(&mcp, token).await;
            assert_eq!(
                (reply.status, reply.challenge.as_str()),
                (401, INVALID_TOKEN)
            );
        }
        assert_eq!(
            endpoint.calls(),
            0,
            "a JWT of a configured issuer was introspected"
        );
    })
    .await;
}

#[tokio::test]
async fn an_opaque_token_or_a_jwt_of_another_issuer_is_introspected_beside_a_jwt_verifier() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        let mcp = mcp(side_by_side(&endpoint)).await;
        let foreign = jwt(
            &jwt_claims("https://other-issuer.example.com", now() + 600),
            HMAC,
        );
        endpoint.answer("opaque-beside", active());
        endpoint.answer(&foreign, active());
        assert_eq!(
            call(&mcp, "opaque-beside").await.body,
            "user-1 alice introspection"
        );
        assert_eq!(
            call(&mcp, &foreign).await.body,
            "user-1 alice introspection"
        );
        // Three parts that are no JWT (the middle is no JSON object) are introspected too.
        endpoint.answer("a.b.c", active());
        assert_eq!(call(&mcp, "a.b.c").await.status, 200);
        assert_eq!(endpoint.calls(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_its_cache_entry_lapses_or_is_invalidated() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        let verifier = verifier_with(
            &endpoint.url(),
            ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
            IntrospectionOptions {
                max_age: Duration::from_millis(300),
                inactive_ttl: Duration::from_millis(300),
                ..options()
            },
        );
        let mcp = mcp(verifier.clone()).await;
        endpoint.answer("opaque-revoked", active());
        assert_eq!(call(&mcp, "opaque-revoked").await.status, 200);
        // Revoked at the authorization server: the cached answer still serves, for max_age.
        endpoint.answer("opaque-revoked", json!({"active": false}));
        assert_eq!(call(&mcp, "opaque-revoked").await.status, 200);
        assert_eq!(endpoint.calls(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(call(&mcp, "opaque-revoked").await.status, 401);
        assert_eq!(endpoint.calls(), 2);
        // An inactive answer is cached briefly, then asked again.
        assert_eq!(call(&mcp, "opaque-revoked").await.status, 401);
        assert_eq!(endpoint.calls(), 2);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(call(&mcp, "opaque-revoked").await.status, 401);
        assert_eq!(endpoint.calls(), 3);
        // invalidate(token): the next request asks at once.
        endpoint.answer("opaque-invalidated", active());
        assert_eq!(call(&mcp, "opaque-invalidated").await.status, 200);
        endpoint.answer("opaque-invalidated", json!({"active": false}));
        assert!(verifier.invalidate("opaque-invalidated"));
        assert!(!verifier.invalidate("opaque-invalidated"));
        assert_eq!(call(&mcp, "opaque-invalidated").await.status, 401);
        assert_eq!(endpoint.calls(), 5);
    })
    .await;
}

/// An MCP `initialize` request to the example server.
async fn initialize(url: &str, token: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    common::client()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_example_server_introspects_from_the_environment_with_the_endpoint_discovered() {
    bounded(async {
        // An issuer whose metadata has an introspection endpoint and no `jwks_uri`.
        let endpoint = Endpoint::start(Expect::Post {
            id: CLIENT_ID.to_owned(),
            secret: SECRET.to_owned(),
        })
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resource = format!("http://{addr}/mcp");
        let issuer = endpoint.issuer();
        let config = EnvConfig::from_vars([
            ("MCP_AUTH_LISTEN", addr.to_string().as_str()),
            ("MCP_AUTH_RESOURCE_URL", &resource),
            ("MCP_AUTH_ISSUER_URL", &issuer),
            ("MCP_AUTH_INTROSPECTION_CLIENT_ID", CLIENT_ID),
            ("MCP_AUTH_INTROSPECTION_CLIENT_SECRET", SECRET),
            ("MCP_AUTH_INTROSPECTION_AUTH", "client_secret_post"),
        ])
        .unwrap();
        let mut answer = active();
        answer["iss"] = json!(issuer);
        answer["aud"] = json!(resource);
        endpoint.answer("opaque-env", answer);
        let mut foreign = active();
        foreign["iss"] = json!("https://evil.example.com");
        foreign["aud"] = json!(resource);
        endpoint.answer("opaque-env-foreign", foreign);
        let (app, shutdown) = quickstart::app(&config).await.unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        assert_eq!(initialize(&resource, "opaque-env").await, 200);
        assert_eq!(initialize(&resource, "opaque-env-foreign").await, 401);
        assert_eq!(initialize(&resource, "opaque-unknown").await, 401);
        assert_eq!(endpoint.calls(), 3);
        shutdown.cancel();
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn discovery_uses_the_configured_http_client_and_size_cap() {
    bounded(async {
        let endpoint = Endpoint::start(basic()).await;
        let agent = "the-operators-own-client/1.0";
        let client = reqwest::Client::builder()
            .user_agent(agent)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let builder = || {
            IntrospectionVerifier::builder(
                ResourceUrl::parse(RESOURCE).unwrap(),
                ClientAuth::client_secret_basic(CLIENT_ID, SECRET),
            )
        };
        let options = IntrospectionOptions {
            client: Some(client),
            ..options()
        };
        let verifier = builder()
            .options(options.clone())
            .discover(&endpoint.issuer())
            .await
            .unwrap()
            .build()
            .unwrap();
        let mut answer = active();
        answer["iss"] = json!(endpoint.issuer());
        endpoint.answer("opaque-own-client", answer);
        let who = verifier.verify_token("opaque-own-client").await.unwrap();
        assert_eq!(who.subject(), "user-1");
        // The metadata fetch and the call both went through the configured client.
        assert_eq!(endpoint.user_agents(), [agent, agent]);

        // The size cap applies to the metadata too: a document over it is no document.
        let capped = IntrospectionOptions {
            max_body_bytes: 32,
            ..options
        };
        let err = builder()
            .options(capped)
            .discover(&endpoint.issuer())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("32"), "{err}");
        assert_eq!(endpoint.user_agents().len(), 3, "one more fetch, refused");
    })
    .await;
}
