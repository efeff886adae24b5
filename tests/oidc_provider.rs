//! Smoke tests of the test harness itself: a real authorization server (npm `oidc-provider`,
//! `tests/interop/as/server.mjs`) starts on 127.0.0.1 and hands out real tokens.

#[path = "common/install.rs"]
mod install;
#[path = "common/oidc.rs"]
mod oidc;

use std::{future::Future, time::Duration};

use oidc::{AuthServer, is_jwt, jwt_parts};
use serde_json::Value;

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

/// Installs the npm packages first (not counted), then runs `test` for at most 60 s.
async fn bounded<F: Future<Output = ()>>(test: F) {
    oidc::ensure_npm_deps_async().await;
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test took more than 60 s");
}

fn scopes(claims: &Value) -> Vec<&str> {
    let mut s: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    s.sort_unstable();
    s
}

#[tokio::test]
async fn discovery_documents_name_the_same_issuer() {
    bounded(async {
        let server = AuthServer::start().await;
        assert_eq!(server.issuer, format!("http://127.0.0.1:{}", server.port));
        let oauth = server.metadata().await;
        let openid = server.openid_configuration().await;
        assert_eq!(oauth["issuer"], server.issuer.as_str());
        assert_eq!(openid["issuer"], server.issuer.as_str());
        assert_eq!(oauth, openid);
        assert_eq!(oauth["jwks_uri"], server.jwks_uri.as_str());
        assert_eq!(oauth["token_endpoint"], server.token_endpoint.as_str());
        for endpoint in [
            "authorization_endpoint",
            "registration_endpoint",
            "introspection_endpoint",
        ] {
            let url = oauth[endpoint]
                .as_str()
                .unwrap_or_else(|| panic!("{endpoint}"));
            assert!(url.starts_with(&server.issuer), "{endpoint}: {url}");
        }
        let list = |name: &str| -> Vec<String> {
            serde_json::from_value(oauth[name].clone()).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert!(list("code_challenge_methods_supported").contains(&"S256".to_owned()));
        let grants = list("grant_types_supported");
        for grant in ["client_credentials", "authorization_code", "refresh_token"] {
            assert!(grants.contains(&grant.to_owned()), "{grant} in {grants:?}");
        }
        let scopes = list("scopes_supported");
        for scope in ["mcp:read", "mcp:write"] {
            assert!(scopes.contains(&scope.to_owned()), "{scope} in {scopes:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn resource_indicator_gives_an_rfc9068_jwt() {
    bounded(async {
        let server = AuthServer::start().await;
        let response = server
            .client_credentials_response(Some(RESOURCE), "mcp:read")
            .await;
        assert_eq!(response["token_type"], "Bearer");
        assert_eq!(response["expires_in"], oidc::DEFAULT_TOKEN_TTL_SECS);
        let token = oidc::access_token(&response);
        let (header, claims) = jwt_parts(&token);
        assert_eq!(header["alg"], "RS256", "{header}");
        assert_eq!(header["typ"], "at+jwt", "{header}");
        let kid = header["kid"].as_str().expect("kid");
        let jwks = server.jwks().await;
        let key = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
        assert_eq!(key["kty"], "RSA");
        assert!(key.get("d").is_none(), "the JWKS leaks the private key");

        assert_eq!(claims["aud"], RESOURCE, "{claims}");
        assert_eq!(claims["iss"], server.issuer.as_str(), "{claims}");
        assert_eq!(claims["scope"], "mcp:read", "{claims}");
        assert_eq!(claims["client_id"], oidc::CLIENT_ID, "{claims}");
        assert_eq!(claims["sub"], oidc::CLIENT_ID, "{claims}");
        assert!(claims["jti"].is_string(), "{claims}");
        let iat = claims["iat"].as_u64().expect("iat");
        let exp = claims["exp"].as_u64().expect("exp");
        assert_eq!(exp - iat, oidc::DEFAULT_TOKEN_TTL_SECS, "{claims}");
    })
    .await;
}

#[tokio::test]
async fn no_resource_gives_an_opaque_token() {
    bounded(async {
        let server = AuthServer::start().await;
        let token = server.client_credentials(None, "mcp:read").await;
        assert!(!is_jwt(&token), "{token}");
        assert!(!token.is_empty());
    })
    .await;
}

#[tokio::test]
async fn both_scopes_and_unknown_ones_dropped() {
    bounded(async {
        let server = AuthServer::start().await;
        let token = server
            .client_credentials(Some(RESOURCE), "mcp:read mcp:write")
            .await;
        let (_, claims) = jwt_parts(&token);
        assert_eq!(scopes(&claims), ["mcp:read", "mcp:write"]);

        // An unknown scope is silently dropped rather than refused.
        let token = server
            .client_credentials(Some(RESOURCE), "mcp:write mcp:admin")
            .await;
        let (_, claims) = jwt_parts(&token);
        assert_eq!(scopes(&claims), ["mcp:write"]);
    })
    .await;
}

#[tokio::test]
async fn another_resource_is_another_audience_and_a_bad_one_is_refused() {
    bounded(async {
        let server = AuthServer::start().await;
        let other = "http://127.0.0.1:9/other";
        let (_, claims) = jwt_parts(&server.client_credentials(Some(other), "mcp:read").await);
        assert_eq!(claims["aud"], other);

        let res = server
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("scope", "mcp:read"),
                ("resource", "urn:not-http"),
            ])
            .await;
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_target", "{body}");
    })
    .await;
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    bounded(async {
        let server = AuthServer::start_with(7).await;
        let response = server
            .client_credentials_response(Some(RESOURCE), "mcp:read")
            .await;
        assert_eq!(response["expires_in"], 7);
        let (_, claims) = jwt_parts(&oidc::access_token(&response));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            7
        );
    })
    .await;
}

#[tokio::test]
async fn authorization_code_with_pkce_runs_headless() {
    bounded(async {
        let server = AuthServer::start().await;
        let response = server
            .authorization_code(RESOURCE, "mcp:read mcp:write")
            .await;
        let (header, claims) = jwt_parts(&oidc::access_token(&response));
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(claims["aud"], RESOURCE, "{claims}");
        assert_eq!(claims["sub"], oidc::ACCOUNT_ID, "{claims}");
        assert_eq!(claims["client_id"], oidc::CLIENT_ID, "{claims}");
        assert_eq!(scopes(&claims), ["mcp:read", "mcp:write"]);

        let refresh_token = response["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh_token in {response}"));
        let refreshed = server.refresh(refresh_token, RESOURCE).await;
        let (_, again) = jwt_parts(&oidc::access_token(&refreshed));
        assert_eq!(again["aud"], RESOURCE, "{again}");
        assert_eq!(again["sub"], oidc::ACCOUNT_ID, "{again}");
        assert_ne!(again["jti"], claims["jti"]);
    })
    .await;
}

#[tokio::test]
async fn dropping_the_server_ends_the_node_process() {
    bounded(async {
        let server = AuthServer::start().await;
        let pid = server.pid();
        let proc_dir = format!("/proc/{pid}");
        if !std::path::Path::new("/proc/self").exists() {
            return;
        }
        assert!(std::path::Path::new(&proc_dir).exists());
        drop(server);
        assert!(
            !std::path::Path::new(&proc_dir).exists(),
            "node {pid} still there"
        );
    })
    .await;
}

#[test]
fn pkce_s256_matches_rfc7636_appendix_b() {
    assert_eq!(
        oidc::pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    // FIPS 180-2 test vectors, including one that spans two blocks.
    let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(oidc::sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(oidc::sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(oidc::sha256(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(
        hex(oidc::sha256(&[b'a'; 1000])),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}
