//! Identity-aware proxy assertions over real sockets: a JWKS served on 127.0.0.1, assertions
//! shaped like Cloudflare Access's, Google IAP's and Pomerium's, in their headers, in front of a
//! server that answers with the identity it was given.
#![cfg(all(feature = "remote-jwks", feature = "aws-lc-rs"))]

mod common;
#[path = "common/jwks_server.rs"]
mod jwks_server;

use axum::{Router, routing::post};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthInfo, AuthLayer, BuildError,
    assertion::{AssertionVerifier, Proxy},
    bearer::StaticBearer,
    config::EnvConfig,
    verifier::{AuthRequest, Schemes, Verdict, Verifier, VerifierExt},
};
use serde_json::{Value, json};

use common::{TestServer, challenges, client, serve_axum};
use jwks_server::{JwksServer, TestKey, bounded, k1, k4, now, options};

const TEAM: &str = "https://acme.cloudflareaccess.com";
const AUD_TAG: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const IAP_AUD: &str = "/projects/1234567890/global/backendServices/987654321";
const ROUTE: &str = "mcp.acme.example";
const BEARER: &str = "c3RhdGljLXRva2VuLWZvci10ZXN0cw";

/// The RS256 key Cloudflare Access signs with, here a test-only one (`tests/fixtures/jwt`).
fn rsa() -> TestKey {
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let encoding =
        EncodingKey::from_rsa_pem(include_bytes!("fixtures/jwt/rsa_private.pem")).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("cf-1".to_owned());
    TestKey {
        kid: "cf-1",
        alg: Algorithm::RS256,
        encoding,
        jwk: serde_json::to_value(&jwk).unwrap(),
    }
}

/// Signs `claims` as the proxies do: `typ: JWT`, the key's `kid`.
fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.to_owned());
    header.typ = Some("JWT".to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// A Cloudflare Access application token for a user.
fn cloudflare_user() -> Value {
    json!({
        "aud": [AUD_TAG],
        "email": "alice@acme.example",
        "exp": now() + 600,
        "iat": now(),
        "nbf": now(),
        "iss": TEAM,
        "type": "app",
        "identity_nonce": "6ei69kawdKzMIAPF",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
        "country": "US",
        "custom": {"department": "engineering"},
    })
}

/// A Cloudflare Access token for a service token: no email, an empty `sub`.
fn cloudflare_service() -> Value {
    json!({
        "aud": [AUD_TAG],
        "common_name": "88bf3b6d86161464f6509f7219099e57.access",
        "exp": now() + 600,
        "iat": now(),
        "nbf": now(),
        "iss": TEAM,
        "type": "app",
        "identity_nonce": "",
        "sub": "",
    })
}

fn google_iap() -> Value {
    json!({
        "aud": IAP_AUD,
        "email": "bob@acme.example",
        "exp": now() + 600,
        "iat": now(),
        "iss": "https://cloud.google.com/iap",
        "sub": "accounts.google.com:118104166613355873812",
        "hd": "acme.example",
        "google": {"access_levels": ["accessPolicies/1/accessLevels/corp"]},
    })
}

fn pomerium() -> Value {
    json!({
        "aud": ROUTE,
        "iss": ROUTE,
        "email": "carol@acme.example",
        "sub": "c4rol",
        "groups": ["admins", "mcp-users"],
        "exp": now() + 600,
        "iat": now(),
        "jti": "5b2a2c3e-0c1f-4a8e-9d5d-0e3e1f1a2b3c",
    })
}

fn cloudflare(jwks: &JwksServer) -> AssertionVerifier {
    AssertionVerifier::cloudflare_access(TEAM)
        .jwks_url(jwks.url())
        .jwks_options(options())
        .audience(AUD_TAG)
        .build()
        .unwrap()
}

/// Answers with the identity the layer put in the request.
async fn whoami(info: AuthInfo) -> axum::Json<Value> {
    axum::Json(json!({
        "subject": info.subject(),
        "method": info.method().as_str(),
        "issuer": info.issuer(),
        "client_id": info.client_id(),
        "scopes": info.scopes().iter().collect::<Vec<_>>(),
    }))
}

async fn serve<V: Verifier>(verifier: V) -> TestServer {
    let app = Router::new()
        .route("/mcp", post(whoami))
        .layer(AuthLayer::new(verifier));
    serve_axum(app).await
}

/// Posts to `/mcp` with the headers given.
async fn post_with(server: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().post(server.url("/mcp"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The `403` of a request that did not come through the proxy: JSON, no challenge, no-store.
async fn assert_not_proxied(res: reqwest::Response) {
    assert_eq!(res.status(), 403);
    assert!(challenges(&res).is_empty(), "{:?}", challenges(&res));
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("did not come through the proxy"),
        "{body}"
    );
}

#[tokio::test]
async fn a_cloudflare_user_assertion_is_accepted_with_the_email_as_identity() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let server = serve(cloudflare(&jwks)).await;
        let token = sign(&key, &cloudflare_user());
        let res = post_with(&server, &[("Cf-Access-Jwt-Assertion", &token)]).await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["subject"], "alice@acme.example");
        assert_eq!(who["method"], "proxy_assertion");
        assert_eq!(who["issuer"], TEAM);
        assert_eq!(who["scopes"], json!([]));
    })
    .await;
}

/// A layer that reads no `Authorization` scheme leaves that header alone: a malformed or
/// repeated one (sent by the client, passed on by the proxy) neither refuses nor admits.
#[tokio::test]
async fn a_proxy_only_layer_ignores_the_authorization_header() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let server = serve(cloudflare(&jwks)).await;
        let token = sign(&key, &cloudflare_user());
        let assertion = ("Cf-Access-Jwt-Assertion", token.as_str());
        for stray in [
            vec![("Authorization", "Bearer not*a*b64token")],
            vec![("Authorization", "Bearer a"), ("Authorization", "Bearer b")],
        ] {
            let mut headers = vec![assertion];
            headers.extend(stray.iter().copied());
            let res = post_with(&server, &headers).await;
            assert_eq!(res.status(), 200, "{stray:?}");
            assert_not_proxied(post_with(&server, &stray).await).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_cloudflare_service_token_is_known_by_its_common_name() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let server = serve(cloudflare(&jwks)).await;
        let token = sign(&key, &cloudflare_service());
        let res = post_with(&server, &[("cf-access-jwt-assertion", &token)]).await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["subject"], "88bf3b6d86161464f6509f7219099e57.access");
        assert_eq!(who["client_id"], "88bf3b6d86161464f6509f7219099e57.access");
    })
    .await;
}

#[tokio::test]
async fn a_google_iap_assertion_is_accepted_with_es256() {
    bounded(async {
        let key = k4();
        let jwks = JwksServer::start(&[&key]).await;
        let verifier = AssertionVerifier::google_iap()
            .jwks_url(jwks.url())
            .jwks_options(options())
            .audience(IAP_AUD)
            .build()
            .unwrap();
        let server = serve(verifier).await;
        let token = sign(&key, &google_iap());
        let res = post_with(&server, &[("X-Goog-IAP-JWT-Assertion", &token)]).await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["subject"], "bob@acme.example");
        assert_eq!(who["issuer"], "https://cloud.google.com/iap");

        // The preset accepts ES256 only: the same claims signed with EdDSA are refused.
        let ed = k1();
        jwks.set_keys(&[&key, &ed]);
        let token = sign(&ed, &google_iap());
        let res = post_with(&server, &[("x-goog-iap-jwt-assertion", &token)]).await;
        assert_not_proxied(res).await;
    })
    .await;
}

#[tokio::test]
async fn a_pomerium_assertion_is_accepted_for_its_route() {
    bounded(async {
        let key = k4();
        let jwks = JwksServer::start(&[&key]).await;
        let verifier = AssertionVerifier::pomerium(ROUTE)
            .jwks_url(jwks.url())
            .jwks_options(options())
            .build()
            .unwrap();
        let server = serve(verifier).await;
        let token = sign(&key, &pomerium());
        let res = post_with(&server, &[("X-Pomerium-Jwt-Assertion", &token)]).await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["subject"], "carol@acme.example");

        let mut other_route = pomerium();
        other_route["aud"] = json!("other.acme.example");
        let token = sign(&key, &other_route);
        let res = post_with(&server, &[("X-Pomerium-Jwt-Assertion", &token)]).await;
        assert_not_proxied(res).await;
    })
    .await;
}

#[tokio::test]
async fn a_request_without_the_assertion_gets_403_without_a_challenge() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let server = serve(cloudflare(&jwks)).await;
        assert_not_proxied(post_with(&server, &[]).await).await;
        // A bearer token is nothing to this layer: still the proxy's 403.
        let res = post_with(&server, &[("authorization", &format!("Bearer {BEARER}"))]).await;
        assert_not_proxied(res).await;
        // Another proxy's header is not this one.
        let token = sign(&key, &cloudflare_user());
        let res = post_with(&server, &[("x-pomerium-jwt-assertion", &token)]).await;
        assert_not_proxied(res).await;
        assert_eq!(jwks.hits(), 0, "nothing to verify, nothing fetched");
    })
    .await;
}

#[tokio::test]
async fn an_assertion_for_another_audience_issuer_time_or_key_gets_403() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let server = serve(cloudflare(&jwks)).await;
        let with = |field: &str, value: Value| {
            let mut claims = cloudflare_user();
            claims[field] = value;
            sign(&key, &claims)
        };
        let bad = [
            (
                "another application",
                with("aud", json!(["0123456789abcdef"])),
            ),
            ("the team domain as audience", with("aud", json!([TEAM]))),
            (
                "another team",
                with("iss", json!("https://evil.cloudflareaccess.com")),
            ),
            ("expired", with("exp", json!(now() - 3600))),
            ("not yet valid", with("nbf", json!(now() + 3600))),
        ];
        for (why, token) in bad {
            let res = post_with(&server, &[("cf-access-jwt-assertion", &token)]).await;
            assert_eq!(res.status(), 403, "{why}");
            assert_not_proxied(res).await;
        }
        // A signature by the team's key, but over other claims.
        let mut forged = sign(&key, &cloudflare_user());
        let other = sign(&key, &cloudflare_service());
        let (head_and_claims, _) = forged.rsplit_once('.').unwrap();
        let (_, other_signature) = other.rsplit_once('.').unwrap();
        forged = format!("{head_and_claims}.{other_signature}");
        let res = post_with(&server, &[("cf-access-jwt-assertion", &forged)]).await;
        assert_not_proxied(res).await;
        let res = post_with(&server, &[("cf-access-jwt-assertion", "not.a.jwt")]).await;
        assert_not_proxied(res).await;
    })
    .await;
}

#[tokio::test]
async fn a_repeated_or_oversized_assertion_header_is_refused() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let server = serve(cloudflare(&jwks)).await;
        let token = sign(&key, &cloudflare_user());
        // Each of the two is valid; together they are refused.
        let res = post_with(
            &server,
            &[
                ("cf-access-jwt-assertion", &token),
                ("cf-access-jwt-assertion", &token),
            ],
        )
        .await;
        assert_not_proxied(res).await;
        // Over 8 KiB: refused before anything is decoded.
        let mut big = cloudflare_user();
        big["custom"] = json!({"padding": "x".repeat(9 * 1024)});
        let res = post_with(&server, &[("cf-access-jwt-assertion", &sign(&key, &big))]).await;
        assert_not_proxied(res).await;
        // The same under a raised limit is accepted.
        let roomy = AssertionVerifier::cloudflare_access(TEAM)
            .jwks_url(jwks.url())
            .jwks_options(options())
            .audience(AUD_TAG)
            .max_header_bytes(32 * 1024)
            .build()
            .unwrap();
        let roomy = serve(roomy).await;
        let res = post_with(&roomy, &[("cf-access-jwt-assertion", &sign(&key, &big))]).await;
        assert_eq!(res.status(), 200);
    })
    .await;
}

#[tokio::test]
async fn with_a_bearer_token_configured_a_missing_assertion_gets_the_bearer_challenge() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let tokens = StaticBearer::new([("ci", BEARER)]).unwrap();
        let server = serve(tokens.or(cloudflare(&jwks))).await;

        let res = post_with(&server, &[]).await;
        assert_eq!(res.status(), 401);
        assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);

        let res = post_with(&server, &[("authorization", &format!("Bearer {BEARER}"))]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["subject"], "ci");

        let token = sign(&key, &cloudflare_user());
        let res = post_with(&server, &[("cf-access-jwt-assertion", &token)]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.json::<Value>().await.unwrap()["subject"],
            "alice@acme.example"
        );

        // A bad assertion with no token: a 401 with the challenge, not the proxy's 403.
        let mut expired = cloudflare_user();
        expired["exp"] = json!(now() - 3600);
        let token = sign(&key, &expired);
        let res = post_with(&server, &[("cf-access-jwt-assertion", &token)]).await;
        assert_eq!(res.status(), 401);
        assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);
    })
    .await;
}

#[tokio::test]
async fn an_assertion_whose_keys_cannot_be_fetched_gets_503_with_retry_after() {
    bounded(async {
        let key = rsa();
        let mut jwks = JwksServer::start(&[&key]).await;
        jwks.stop();
        let server = serve(cloudflare(&jwks)).await;
        let token = sign(&key, &cloudflare_user());
        let res = post_with(&server, &[("cf-access-jwt-assertion", &token)]).await;
        assert_eq!(res.status(), 503);
        let secs: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=7).contains(&secs), "{secs}");
        assert!(challenges(&res).is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_environment_builds_a_cloudflare_assertion_verifier() {
    bounded(async {
        let key = rsa();
        let jwks = JwksServer::start(&[&key]).await;
        let config = EnvConfig::from_vars([
            ("MCP_AUTH_ASSERTION_HEADER", "cloudflare"),
            ("MCP_AUTH_ASSERTION_ISSUER", TEAM),
            ("MCP_AUTH_ASSERTION_JWKS_URL", jwks.url().as_str()),
            ("MCP_AUTH_ASSERTION_AUDIENCE", AUD_TAG),
        ])
        .unwrap();
        assert!(config.has_credentials());
        let verifier = config.assertion_verifier().unwrap();
        assert_eq!(verifier.header(), Proxy::CloudflareAccess.header());
        let app = Router::new()
            .route("/mcp", post(whoami))
            .layer(config.layer().await.unwrap());
        let server = serve_axum(app).await;
        let token = sign(&key, &cloudflare_user());
        let res = post_with(&server, &[("cf-access-jwt-assertion", &token)]).await;
        assert_eq!(res.status(), 200);
        assert_not_proxied(post_with(&server, &[]).await).await;
    })
    .await;
}

/// A verifier that declares nothing at all still cannot make a layer; one that reads a proxy's
/// header can.
#[test]
fn a_layer_needs_a_verifier_that_reads_something() {
    #[derive(Debug)]
    struct Nothing;
    impl Verifier for Nothing {
        fn schemes(&self) -> Schemes {
            Schemes::NONE
        }
        fn verify(&self, _: &AuthRequest<'_>) -> Verdict {
            unreachable!()
        }
    }
    assert_eq!(
        AuthLayer::builder(Nothing).build().unwrap_err(),
        BuildError::NoScheme
    );
    let verifier = AssertionVerifier::builder(http::HeaderName::from_static("x-assertion"))
        .issuer("https://proxy.example.com")
        .keys(Default::default())
        .audience("mcp")
        .build()
        .unwrap();
    assert_eq!(verifier.schemes(), Schemes::PROXY);
    assert!(AuthLayer::builder(verifier).build().is_ok());
}
