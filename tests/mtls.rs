//! Certificate-bound access tokens (RFC 8705) over real mutual TLS: the server of
//! `examples/mtls.rs` (tokio-rustls + hyper) on 127.0.0.1 with certificates made here by
//! `rcgen`, reqwest clients presenting client certificates, and JWTs signed here with the issuer
//! key of `tests/fixtures/jwt/` carrying `cnf.x5t#S256`. Then the same tokens through a
//! TLS-terminating proxy's header, from a trusted peer and from an untrusted one.
#![cfg(feature = "aws-lc-rs")]

mod common;

#[path = "../examples/mtls.rs"]
#[allow(dead_code)]
mod example;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::digest::{SHA256, digest};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, challenges, client, client_from, serve_with};
use example::{Ca, Leaf, hello, serve, server_config};
use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
use mcp_server_auth::{
    AuthLayer, ResourceUrl, Verifier,
    config::EnvConfig,
    dpop::{Dpop, DpopOptions},
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
    mtls::{CertificateBound, CertificateOptions},
    throttle::TrustedProxies,
};
use serde_json::{Value, json};
use tokio_rustls::rustls::ServerConfig;
use tower::{Layer, service_fn};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const HEADER: &str = "x-ssl-client-cert";

fn fixture(path: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `cnf.x5t#S256` of `cert`, computed here independently of the crate (RFC 8705 §3.1).
fn x5t(cert: &Leaf) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, cert.cert.as_ref()).as_ref())
}

/// An access token from the issuer with this `cnf` (none: unbound).
fn token(cnf: Option<Value>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "c1",
        "iat": now, "exp": now + 600, "scope": "mcp:read",
    });
    if let Some(cnf) = cnf {
        claims["cnf"] = cnf;
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let key = EncodingKey::from_ec_pem(&fixture("jwt/ec_private.pem")).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn bound_to(cert: &Leaf) -> String {
    token(Some(json!({ "x5t#S256": x5t(cert) })))
}

fn tokens() -> JwtVerifier {
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let keys = KeySet::new()
        .add_pem(
            Some("ec-1"),
            Algorithm::ES256,
            &fixture("jwt/ec_public.pem"),
        )
        .unwrap();
    JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(Issuer::with_keys(ISSUER, keys))
        .build()
        .unwrap()
}

/// A CA, the server's certificate, and two clients: Alice (whom tokens are bound to) and
/// Mallory (another certificate of the same CA).
struct Pki {
    ca: Ca,
    tls: Arc<ServerConfig>,
    alice: Leaf,
    mallory: Leaf,
}

fn pki() -> Pki {
    let ca = Ca::new("test CA");
    let server = ca.issue("server", &["127.0.0.1"]);
    let tls = server_config(vec![server.cert], server.key.into(), vec![ca.cert.clone()]).unwrap();
    let alice = ca.issue("alice", &["alice.example"]);
    let mallory = ca.issue("mallory", &["mallory.example"]);
    Pki {
        ca,
        tls,
        alice,
        mallory,
    }
}

/// The example server around `verifier`, over TLS when `tls` is given.
async fn start<V: Verifier + Clone>(verifier: V, tls: Option<Arc<ServerConfig>>) -> TestServer {
    let service = AuthLayer::new(verifier).layer(service_fn(hello));
    serve_with(move |listener| serve(listener, tls, service)).await
}

/// A client trusting the test CA, presenting `identity` if given.
fn tls_client(pki: &Pki, identity: Option<&Leaf>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_der(pki.ca.cert.as_ref()).unwrap();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .tls_certs_only([ca]);
    if let Some(leaf) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(leaf.pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// Status, challenges and body of `GET url` with `token`, and `headers`.
async fn call(
    client: &reqwest::Client,
    url: String,
    token: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<String>, String) {
    let mut req = client.get(url).bearer_auth(token);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let (status, challenges) = (res.status().as_u16(), challenges(&res));
    (status, challenges, res.text().await.unwrap())
}

fn https(server: &TestServer) -> String {
    format!("https://{}/mcp", server.addr)
}

const INVALID_TOKEN: &str = r#"Bearer realm="mcp", error="invalid_token""#;

fn refused() -> (u16, Vec<String>, String) {
    (
        401,
        vec![INVALID_TOKEN.to_owned()],
        r#"{"error":"invalid_token"}"#.to_owned(),
    )
}

fn accepted() -> (u16, Vec<String>, String) {
    (200, vec![], "hello alice\n".to_owned())
}

fn bound(options: CertificateOptions) -> CertificateBound<JwtVerifier> {
    CertificateBound::new(tokens(), options)
}

#[tokio::test]
async fn a_token_bound_to_the_client_certificate_is_accepted_over_mutual_tls() {
    let pki = pki();
    let server = start(bound(CertificateOptions::new()), Some(pki.tls.clone())).await;
    let alice = tls_client(&pki, Some(&pki.alice));
    let token = bound_to(&pki.alice);
    assert_eq!(call(&alice, https(&server), &token, &[]).await, accepted());
    // A second request (a token-cache hit) is compared again, and still matches.
    assert_eq!(call(&alice, https(&server), &token, &[]).await, accepted());
}

#[tokio::test]
async fn another_client_certificate_is_refused_even_after_a_cache_hit() {
    let pki = pki();
    let server = start(bound(CertificateOptions::new()), Some(pki.tls.clone())).await;
    let token = bound_to(&pki.alice);
    let alice = tls_client(&pki, Some(&pki.alice));
    assert_eq!(call(&alice, https(&server), &token, &[]).await, accepted());
    let mallory = tls_client(&pki, Some(&pki.mallory));
    assert_eq!(call(&mallory, https(&server), &token, &[]).await, refused());
}

#[tokio::test]
async fn a_bound_token_without_a_client_certificate_is_refused_and_an_unbound_one_is_not() {
    let pki = pki();
    let server = start(bound(CertificateOptions::new()), Some(pki.tls.clone())).await;
    let anonymous = tls_client(&pki, None);
    let bound_token = bound_to(&pki.alice);
    assert_eq!(
        call(&anonymous, https(&server), &bound_token, &[]).await,
        refused()
    );
    assert_eq!(
        call(&anonymous, https(&server), &token(None), &[]).await,
        accepted()
    );
}

#[tokio::test]
async fn a_certificate_bound_token_over_plain_http_is_refused() {
    let pki = pki();
    let server = start(bound(CertificateOptions::new()), None).await;
    let got = call(&client(), server.url("/mcp"), &bound_to(&pki.alice), &[]).await;
    assert_eq!(got, refused());
}

#[tokio::test]
async fn a_certificate_bound_token_is_refused_by_a_verifier_without_the_wrapper() {
    let pki = pki();
    let server = start(tokens(), Some(pki.tls.clone())).await;
    let alice = tls_client(&pki, Some(&pki.alice));
    assert_eq!(
        call(&alice, https(&server), &bound_to(&pki.alice), &[]).await,
        refused()
    );
}

/// A client's DPoP key (ES256): how it signs, its public JWK, its RFC 7638 thumbprint
/// (computed here, independently of the crate).
struct DpopKey {
    encoding: EncodingKey,
    jwk: Value,
    jkt: String,
}

fn dpop_key() -> DpopKey {
    let encoding = EncodingKey::from_ec_pem(&fixture("jwt/issuer_b_ec_private.pem")).unwrap();
    let jwk =
        serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap()).unwrap();
    let canonical = json!({ "crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"] });
    let jkt = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.to_string().as_bytes()).as_ref());
    DpopKey { encoding, jwk, jkt }
}

/// A fresh DPoP proof by `key` for `GET RESOURCE` with `token` (RFC 9449 §4.2).
fn proof(key: &DpopKey, token: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk });
    let claims = json!({
        "jti": format!("jti-{}", rand::random::<u64>()), "htm": "GET", "htu": RESOURCE,
        "iat": now, "ath": URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()).as_ref()),
    });
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, Algorithm::ES256).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn a_token_bound_to_a_certificate_and_a_dpop_key_needs_both() {
    let pki = pki();
    let resource = ResourceUrl::parse(RESOURCE).unwrap();
    let dpop = Dpop::new(tokens(), DpopOptions::builder(&resource).build().unwrap());
    let server = start(
        CertificateBound::new(dpop, CertificateOptions::new()),
        Some(pki.tls.clone()),
    )
    .await;
    let key = dpop_key();
    let both = token(Some(json!({ "x5t#S256": x5t(&pki.alice), "jkt": key.jkt })));
    let dpop_call = |client: reqwest::Client, proof: String| {
        let (url, both) = (https(&server), both.clone());
        async move {
            let res = client
                .get(url)
                .header("authorization", format!("DPoP {both}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }
    };
    let alice = tls_client(&pki, Some(&pki.alice));
    let mallory = tls_client(&pki, Some(&pki.mallory));
    // The proof and the certificate: accepted.
    assert_eq!(dpop_call(alice.clone(), proof(&key, &both)).await, 200);
    // The proof without the certificate, or with another one: refused.
    assert_eq!(dpop_call(mallory, proof(&key, &both)).await, 401);
    let anonymous = tls_client(&pki, None);
    assert_eq!(dpop_call(anonymous, proof(&key, &both)).await, 401);
    // The certificate without the proof (as a bearer token): refused, DPoP offered.
    let (status, challenges, _) = call(&alice, https(&server), &both, &[]).await;
    assert_eq!((status, challenges[0].as_str()), (401, INVALID_TOKEN));
    assert!(challenges[1].starts_with("DPoP "), "{challenges:?}");
}

/// DPoP around the certificate check, as `EnvConfig` builds it: a certificate-bound token sent
/// as a bearer token is compared with the certificate, not refused as a DPoP downgrade (it was
/// refused over every connection before).
#[tokio::test]
async fn a_certificate_bound_bearer_token_passes_a_dpop_wrapper_around_the_certificate_check() {
    let pki = pki();
    let resource = ResourceUrl::parse(RESOURCE).unwrap();
    let options = DpopOptions::builder(&resource).build().unwrap();
    let inside = Dpop::new(bound(CertificateOptions::new()), options);
    let server = start(inside, Some(pki.tls.clone())).await;
    let token = bound_to(&pki.alice);
    let alice = tls_client(&pki, Some(&pki.alice));
    assert_eq!(call(&alice, https(&server), &token, &[]).await, accepted());
    let mallory = tls_client(&pki, Some(&pki.mallory));
    let (status, challenges, _) = call(&mallory, https(&server), &token, &[]).await;
    assert_eq!((status, challenges[0].as_str()), (401, INVALID_TOKEN));
    // A token also bound to a DPoP key is still a downgrade as a bearer token, certificate or not.
    let key = dpop_key();
    let both = token_with(&pki.alice, &key);
    let (status, challenges, _) = call(&alice, https(&server), &both, &[]).await;
    assert_eq!((status, challenges[0].as_str()), (401, INVALID_TOKEN));
    // With its proof and the certificate, it is accepted in this order too.
    let res = alice
        .get(https(&server))
        .header("authorization", format!("DPoP {both}"))
        .header("dpop", proof(&key, &both))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A token bound to both `cert` and `key`.
fn token_with(cert: &Leaf, key: &DpopKey) -> String {
    token(Some(json!({ "x5t#S256": x5t(cert), "jkt": key.jkt })))
}

#[tokio::test]
async fn a_cnf_with_another_confirmation_method_is_refused() {
    let pki = pki();
    let server = start(bound(CertificateOptions::new()), Some(pki.tls.clone())).await;
    let alice = tls_client(&pki, Some(&pki.alice));
    let other = token(Some(json!({ "x5t#S256": x5t(&pki.alice), "kid": "k" })));
    assert_eq!(call(&alice, https(&server), &other, &[]).await, refused());
}

// ---------------------------------------------------------------------------------------------
// Through a TLS-terminating proxy's header
// ---------------------------------------------------------------------------------------------

/// A plain-HTTP server trusting the proxy at 127.0.0.1 to forward certificates in [`HEADER`].
async fn behind_proxy() -> TestServer {
    let options = CertificateOptions::new().header_from_trusted_proxies(
        http::HeaderName::from_static(HEADER),
        TrustedProxies::parse("127.0.0.1").unwrap(),
    );
    start(bound(options), None).await
}

/// `leaf` as nginx's `$ssl_client_escaped_cert` writes it: PEM, URL-encoded.
fn escaped_pem(leaf: &Leaf) -> String {
    let pem = leaf
        .pem
        .split_inclusive("-----END CERTIFICATE-----")
        .next()
        .unwrap();
    pem.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_certificate_a_trusted_proxy_forwards_is_accepted_as_url_encoded_pem_or_xfcc() {
    let pki = pki();
    let server = behind_proxy().await;
    let proxy = client_from([127, 0, 0, 1]);
    let token = bound_to(&pki.alice);
    let pem = escaped_pem(&pki.alice);
    let got = call(&proxy, server.url("/mcp"), &token, &[(HEADER, &pem)]).await;
    assert_eq!(got, accepted());
    let xfcc = format!("By=spiffe://mesh/mcp;Cert=\"{pem}\";Subject=\"CN=alice\"");
    let got = call(&proxy, server.url("/mcp"), &token, &[(HEADER, &xfcc)]).await;
    assert_eq!(got, accepted());
    // Another certificate, or none, is refused.
    let other = escaped_pem(&pki.mallory);
    assert_eq!(
        call(&proxy, server.url("/mcp"), &token, &[(HEADER, &other)]).await,
        refused()
    );
    assert_eq!(
        call(&proxy, server.url("/mcp"), &token, &[]).await,
        refused()
    );
}

#[tokio::test]
async fn the_same_header_from_an_untrusted_peer_is_ignored() {
    let pki = pki();
    let server = behind_proxy().await;
    let stranger = client_from([127, 0, 0, 2]);
    let pem = escaped_pem(&pki.alice);
    let got = call(
        &stranger,
        server.url("/mcp"),
        &bound_to(&pki.alice),
        &[(HEADER, &pem)],
    )
    .await;
    assert_eq!(got, refused());
}

#[tokio::test]
async fn two_certificate_headers_from_a_trusted_proxy_are_refused_even_if_both_are_the_bound_one() {
    // Which one the proxy set, and which one the client did, cannot be told apart.
    let pki = pki();
    let server = behind_proxy().await;
    let proxy = client_from([127, 0, 0, 1]);
    let pem = escaped_pem(&pki.alice);
    let got = call(
        &proxy,
        server.url("/mcp"),
        &bound_to(&pki.alice),
        &[(HEADER, &pem), (HEADER, &pem)],
    )
    .await;
    assert_eq!(got, refused());
}

#[tokio::test]
async fn a_garbage_header_from_a_trusted_proxy_is_401_not_500() {
    let pki = pki();
    let server = behind_proxy().await;
    let proxy = client_from([127, 0, 0, 1]);
    let token = bound_to(&pki.alice);
    let pem = escaped_pem(&pki.alice);
    let two = format!("Cert=\"{pem}\",Cert=\"{pem}\"");
    let truncated = &pem[..pem.len() / 2];
    for garbage in [
        "%zz",
        "Cert=\"unterminated",
        "-----BEGIN CERTIFICATE-----AAAA",
        two.as_str(),
        truncated,
    ] {
        let got = call(&proxy, server.url("/mcp"), &token, &[(HEADER, garbage)]).await;
        assert_eq!(got, refused(), "{garbage}");
    }
}

#[test]
fn the_metadata_says_certificate_bound_tokens_are_supported_when_tokens_are_checked() {
    let config = EnvConfig::from_vars([
        ("MCP_AUTH_ISSUER_URL", ISSUER),
        ("MCP_AUTH_RESOURCE_URL", RESOURCE),
    ])
    .unwrap();
    let metadata = serde_json::to_value(config.metadata().unwrap().unwrap()).unwrap();
    assert_eq!(
        metadata["tls_client_certificate_bound_access_tokens"],
        json!(true)
    );
}
