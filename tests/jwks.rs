//! Remote JWKS keys against a JWKS server of our own on 127.0.0.1 (`tests/common/jwks_server.rs`),
//! whose behaviour each test controls (keys served, `Cache-Control`, delay, status, garbage,
//! oversize bodies, redirects, down) and which counts the requests it gets; and discovery against
//! a metadata server of our own. Tokens are signed with test-only keys (`tests/keys/`). The
//! verifier runs behind a real `AuthLayer` on a real axum server where the status code matters
//! (200 / 401 / 503 with `Retry-After`), and is called directly where HTTP adds nothing. More
//! faults, with figures, in `tests/faults.rs`; load in `tests/load.rs`.
#![cfg(all(
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))] // Remote keys and JWT verification.

mod common;
#[path = "common/jwks_server.rs"]
mod jwks_server;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::TestServer;
use jwks_server::*;
use mcp_server_auth::{
    jwt::{Issuer, JwtConfigError, RemoteJwksOptions, RemoteKeysError},
    verifier::{Invalid, Rejection},
};
use serde_json::{Value, json};

/// A JWKS server serving `keys`, and an MCP server whose verifier fetched them from it (eagerly,
/// so that the cooldown starts now).
async fn serving(keys: &[&TestKey]) -> (JwksServer, Mcp) {
    let jwks = JwksServer::start(keys).await;
    let issuer = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
        .await
        .unwrap();
    let server = mcp(verifier(issuer)).await;
    (jwks, server)
}

// ---------------------------------------------------------------------------------------------
// Start: lazy and eager
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lazy_start_fetches_on_the_first_request_only() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let issuer = Issuer::with_jwks_uri(ISSUER, &jwks.url(), options()).unwrap();
        assert_eq!(issuer.jwks_uri(), Some(jwks.url().as_str()));
        let server = mcp(verifier(issuer)).await;
        assert_eq!(
            jwks.hits(),
            0,
            "nothing is fetched before the first request"
        );
        assert_ok(&call(&server, &token(&k1)).await);
        assert_eq!(jwks.hits(), 1);
        for _ in 0..5 {
            assert_ok(&call(&server, &token(&k1)).await);
        }
        assert_eq!(jwks.hits(), 1, "known keys are served from the cache");
    })
    .await;
}

#[tokio::test]
async fn lazy_start_concurrent_first_requests_share_one_fetch() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        jwks.set_delay(Duration::from_millis(150));
        let v = verifier(Issuer::with_jwks_uri(ISSUER, &jwks.url(), options()).unwrap());
        let tokens: Vec<String> = (0..50).map(|_| token(&k1)).collect();
        let results =
            futures_util::future::join_all(tokens.iter().map(|t| v.verify_token(t))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(jwks.hits(), 1, "single-flight");
    })
    .await;
}

#[tokio::test]
async fn eager_start_fetches_before_returning() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let issuer = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap();
        assert_eq!(jwks.hits(), 1);
        let v = verifier(issuer);
        v.verify_token(&token(&k1)).await.unwrap();
        assert_eq!(jwks.hits(), 1);
    })
    .await;
}

#[tokio::test]
async fn eager_start_failures_are_errors_not_panics() {
    bounded(async {
        let jwks = JwksServer::start(&[]).await;
        // No key at all.
        let err = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteKeysError::Jwks { .. }), "{err}");
        assert!(err.to_string().contains("no keys"), "{err}");
        // A server error.
        jwks.set_fault(Fault::Status(500));
        let err = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteKeysError::Fetch { .. }), "{err}");
        assert!(err.to_string().contains("500"), "{err}");
        // Nobody listening.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = Issuer::with_jwks_uri_eager(ISSUER, &format!("http://{closed}/jwks"), options())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteKeysError::Fetch { .. }), "{err}");
        // A bad URL.
        let err = Issuer::with_jwks_uri_eager(ISSUER, "http://auth.example.com/jwks", options())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteKeysError::Config(_)), "{err}");
    })
    .await;
}

#[tokio::test]
async fn urls_must_be_https_except_loopback() {
    let err = Issuer::with_jwks_uri(ISSUER, "http://auth.example.com/jwks", options()).unwrap_err();
    assert!(matches!(err, JwtConfigError::JwksUri { .. }), "{err}");
    assert!(err.to_string().contains("https"), "{err}");
    for bad in [
        "ftp://auth.example.com/jwks",
        "/jwks",
        "https://u@auth.example.com/jwks",
    ] {
        assert!(
            Issuer::with_jwks_uri(ISSUER, bad, options()).is_err(),
            "{bad}"
        );
    }
    for good in [
        "https://auth.example.com/jwks",
        "http://127.0.0.1:1/jwks",
        "http://localhost:1/jwks",
        "http://[::1]:1/jwks",
    ] {
        assert!(
            Issuer::with_jwks_uri(ISSUER, good, options()).is_ok(),
            "{good}"
        );
    }
    let opt_out = RemoteJwksOptions {
        allow_plain_http_non_loopback: true,
        ..options()
    };
    assert!(Issuer::with_jwks_uri(ISSUER, "http://auth.example.com/jwks", opt_out).is_ok());
    let inconsistent = RemoteJwksOptions {
        min_max_age: Duration::from_secs(100),
        max_max_age: Duration::from_secs(10),
        ..options()
    };
    assert!(matches!(
        Issuer::with_jwks_uri(ISSUER, "https://auth.example.com/jwks", inconsistent),
        Err(JwtConfigError::RemoteOptions(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_key_is_accepted_after_one_refresh() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let (jwks, server) = serving(&[&k1]).await;
        assert_ok(&call(&server, &token(&k1)).await);
        assert_eq!(jwks.hits(), 1);
        // The authorization server rotates: k2 is published and used.
        jwks.set_keys(&[&k1, &k2]);
        past_cooldown().await;
        assert_ok(&call(&server, &token(&k2)).await);
        assert_eq!(jwks.hits(), 2, "one refresh");
        assert_ok(&call(&server, &token(&k2)).await);
        assert_ok(&call(&server, &token(&k1)).await);
        assert_eq!(jwks.hits(), 2);
    })
    .await;
}

/// A token whose claims no key could make valid (here `{}`, unsigned) is refused on them before
/// it may start a fetch, so it cannot spend the refresh budget that a key published right after
/// needs: the next real token with that new key gets its fetch at once.
#[tokio::test]
async fn a_token_refused_on_its_claims_never_spends_the_fetch_budget() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let (jwks, server) = serving(&[&k1]).await;
        past_cooldown().await;
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"made-up"}"#);
        let junk = format!("{header}.e30.AAAA");
        assert_invalid_token(&call(&server, &junk).await);
        // A fetch it started would run behind the answer: give one time to arrive.
        let fetched = wait_until(Duration::from_millis(500), || jwks.hits() > 1).await;
        assert!(!fetched, "refused on its claims, without a fetch");
        // The authorization server now publishes a new key, and a client uses it.
        jwks.set_keys(&[&k1, &k2]);
        assert_ok(&call(&server, &token(&k2)).await);
        assert_eq!(jwks.hits(), 2);
    })
    .await;
}

/// Within the cooldown after a fetch, a key id no fetch has looked for yet may be a key
/// published since: `503` with `Retry-After` (try again), never `401` (which sends clients to log
/// in again). Once a fetch has looked for it, the answer is final.
#[tokio::test]
async fn a_key_published_within_the_cooldown_gets_503_then_is_accepted() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let (jwks, server) = serving(&[&k1]).await;
        past_cooldown().await;
        // Claims that look right, a made-up key id: this one does cost a fetch, and is refused.
        let made_up = token_with(&k1, "made-up", ISSUER);
        assert_invalid_token(&call(&server, &made_up).await);
        assert_eq!(jwks.hits(), 2);
        // A new key appears just after that fetch.
        jwks.set_keys(&[&k1, &k2]);
        let fresh = token(&k2);
        assert_unavailable(&call(&server, &fresh).await);
        assert_eq!(jwks.hits(), 2, "no fetch within the cooldown");
        // The made-up one was looked for: still refused, at once.
        assert_invalid_token(&call(&server, &made_up).await);
        past_cooldown().await;
        assert_ok(&call(&server, &fresh).await);
        assert_eq!(jwks.hits(), 3);
    })
    .await;
}

/// A key set may hold several keys under one `kid` (an old and a new key during a rotation,
/// or an RSA and an EC key), and several keys for one algorithm without any `kid`: each
/// matching key is tried.
#[tokio::test]
async fn every_key_matching_the_kid_and_algorithm_is_tried() {
    bounded(async {
        let (k1, k2, k3, k4) = (k1(), k2(), k3(), k4());
        // k2 and k3 served under k1's kid, after k1; k4 (ES256) under it too.
        let mut set =
            json!({"keys": [k1.jwk.clone(), k4.jwk.clone(), k2.jwk.clone(), k3.jwk.clone()]});
        for i in 1..4 {
            set["keys"][i]["kid"] = json!("k1");
        }
        let keys = mcp_server_auth::jwt::KeySet::from_jwks_json(&set.to_string()).unwrap();
        let v = verifier(Issuer::with_keys(ISSUER, keys));
        for signer in [&k1, &k2, &k3, &k4] {
            v.verify_token(&token_with(signer, "k1", ISSUER))
                .await
                .unwrap_or_else(|e| panic!("signed by {}: {e:?}", signer.kid));
        }
        // Still a bad signature when none of them signed it.
        let mut set = json!({"keys": [k1.jwk.clone(), k2.jwk.clone()]});
        set["keys"][1]["kid"] = json!("k1");
        let keys = mcp_server_auth::jwt::KeySet::from_jwks_json(&set.to_string()).unwrap();
        let only_two = verifier(Issuer::with_keys(ISSUER, keys));
        assert_eq!(
            only_two
                .verify_token(&token_with(&k3, "k1", ISSUER))
                .await
                .err(),
            Some(Rejection::Invalid(Invalid::BadSignature))
        );
        // Without any kid: both Ed25519 keys are tried.
        let mut set = json!({"keys": [k1.jwk.clone(), k2.jwk.clone()]});
        for key in set["keys"].as_array_mut().unwrap() {
            key.as_object_mut().unwrap().remove("kid");
        }
        let keys = mcp_server_auth::jwt::KeySet::from_jwks_json(&set.to_string()).unwrap();
        let v = verifier(Issuer::with_keys(ISSUER, keys));
        for signer in [&k1, &k2] {
            let mut header = jsonwebtoken::Header::new(signer.alg);
            header.typ = Some("at+jwt".to_owned());
            let t = jsonwebtoken::encode(&header, &claims(ISSUER), &signer.encoding).unwrap();
            v.verify_token(&t)
                .await
                .unwrap_or_else(|e| panic!("signed by {}: {e:?}", signer.kid));
        }
    })
    .await;
}

/// `MCP_AUTH_SCOPE_CLAIM` names the one claim scopes are read from; by default they are the
/// union of `scope` and `scp`.
#[tokio::test]
async fn the_scope_claim_can_be_chosen_from_the_environment() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let mut claims = claims(ISSUER);
        claims["scope"] = json!("mcp:read");
        claims["scp"] = json!(["mcp:admin"]);
        let token = sign(&k1, k1.kid, &claims);
        let url = jwks.url();
        let vars = |claim: Option<&'static str>| {
            let mut vars = vec![
                ("MCP_AUTH_ISSUER_URL", ISSUER.to_owned()),
                ("MCP_AUTH_JWKS_URL", url.clone()),
                ("MCP_AUTH_RESOURCE_URL", RESOURCE.to_owned()),
            ];
            vars.extend(claim.map(|c| ("MCP_AUTH_SCOPE_CLAIM", c.to_owned())));
            vars
        };
        let scopes = |config: mcp_server_auth::config::EnvConfig| {
            let token = token.clone();
            async move {
                let v = config.jwt_verifier().await.unwrap().unwrap();
                let info = v.verify_token(&token).await.unwrap();
                info.scopes().iter().map(str::to_owned).collect::<Vec<_>>()
            }
        };
        let from = mcp_server_auth::config::EnvConfig::from_vars;
        assert_eq!(
            scopes(from(vars(None)).unwrap()).await,
            ["mcp:admin", "mcp:read"]
        );
        assert_eq!(
            scopes(from(vars(Some("scope"))).unwrap()).await,
            ["mcp:read"]
        );
        assert_eq!(
            scopes(from(vars(Some("scp"))).unwrap()).await,
            ["mcp:admin"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_removed_key_is_refused_even_for_cached_tokens() {
    bounded(async {
        let (k1, k2, k3) = (k1(), k2(), k3());
        let (jwks, server) = serving(&[&k1, &k2]).await;
        let old = token(&k1);
        assert_ok(&call(&server, &old).await);
        assert_ok(&call(&server, &old).await); // now in the verified-token cache
        // k1 is withdrawn (compromised, say); a token naming an unknown key triggers a refresh.
        jwks.set_keys(&[&k2]);
        past_cooldown().await;
        assert_invalid_token(&call(&server, &token(&k3)).await);
        assert_eq!(jwks.hits(), 2);
        // The cached verdict for the k1 token went with the key.
        assert_invalid_token(&call(&server, &old).await);
        assert_invalid_token(&call(&server, &token(&k1)).await);
        assert_ok(&call(&server, &token(&k2)).await);
        assert_eq!(jwks.hits(), 2, "within the cooldown, no more fetches");
    })
    .await;
}

#[tokio::test]
async fn a_removed_key_is_refused_after_its_own_refresh() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let jwks = JwksServer::start(&[&k1]).await;
        let opts = RemoteJwksOptions {
            min_max_age: Duration::from_secs(1),
            ..options()
        };
        jwks.set_cache_control("max-age=1");
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
                .await
                .unwrap(),
        );
        v.verify_token(&token(&k1)).await.unwrap();
        jwks.set_keys(&[&k2]);
        // The background refresh (at 80 % of max-age) picks the change up without any request.
        assert!(wait_until(Duration::from_secs(5), || jwks.hits() >= 2).await);
        // Give the refresh a moment to publish.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            v.verify_token(&token(&k1)).await.unwrap_err(),
            Rejection::Invalid(Invalid::UnknownKey)
        );
        v.verify_token(&token(&k2)).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_kid_with_another_algorithm_is_refused_without_a_fetch() {
    bounded(async {
        let (k1, k4) = (k1(), k4());
        let jwks = JwksServer::start(&[&k1, &k4]).await;
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
                .await
                .unwrap(),
        );
        v.verify_token(&token(&k4)).await.unwrap();
        past_cooldown().await;
        // Signed with the ES256 key but naming the Ed25519 key's kid.
        let err = v
            .verify_token(&token_with(&k4, "k1", ISSUER))
            .await
            .unwrap_err();
        assert!(matches!(err, Rejection::Invalid(_)), "{err:?}");
        assert_eq!(jwks.hits(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_down_known_keys_work_unknown_kid_gets_503() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let (mut jwks, server) = serving(&[&k1]).await;
        jwks.stop();
        past_cooldown().await;
        for _ in 0..3 {
            assert_ok(&call(&server, &token(&k1)).await);
        }
        // A key we cannot know about while the endpoint is down: 503, not 401.
        assert_unavailable(&call(&server, &token(&k2)).await);
        assert_unavailable(&call(&server, &token(&k2)).await);
        assert_ok(&call(&server, &token(&k1)).await);
        // Back up, with k2 published.
        jwks.set_keys(&[&k1, &k2]);
        jwks.restart().await;
        past_cooldown().await;
        assert_ok(&call(&server, &token(&k2)).await);
    })
    .await;
}

/// A token whose key is not at hand is first judged on its claims, read unverified: those that
/// no key could make valid (expired, another resource, another issuer) are refused for that reason
/// (401), with the endpoint up or down; the rest get "unknown key" (up) or 503 (down).
#[tokio::test]
async fn unknown_kid_tokens_are_refused_for_their_claims_first() {
    bounded(async {
        let k1 = k1();
        let mut jwks = JwksServer::start(&[&k1]).await;
        let issuer = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap();
        let v = verifier(issuer);
        let kid = "made-up";
        let mut wrong_audience = claims(ISSUER);
        wrong_audience["aud"] = json!("https://other.example.com/mcp");
        let cases = [
            (expired_token_with_kid(&k1, kid), Invalid::Expired),
            (sign(&k1, kid, &wrong_audience), Invalid::WrongAudience),
            (
                sign(&k1, kid, &claims("https://other-issuer.example.com")),
                Invalid::WrongIssuer,
            ),
        ];
        let refused = |why: Invalid| Some(Rejection::Invalid(why));
        for (token, why) in &cases {
            assert_eq!(v.verify_token(token).await.err(), refused(*why));
        }
        assert_eq!(
            jwks.hits(),
            1,
            "refused on their claims, they cost no fetch"
        );
        past_cooldown().await;
        assert_eq!(
            v.verify_token(&token_with(&k1, kid, ISSUER)).await.err(),
            refused(Invalid::UnknownKey)
        );
        assert_eq!(jwks.hits(), 2);
        // Down: the same refusals, not 503; a token only a key could judge gets 503.
        jwks.stop();
        past_cooldown().await;
        for (token, why) in &cases {
            assert_eq!(v.verify_token(token).await.err(), refused(*why));
        }
        assert!(matches!(
            v.verify_token(&token_with(&k1, "another-made-up", ISSUER))
                .await,
            Err(Rejection::Unavailable { .. })
        ));
        // Never accepted on unverified claims: a valid-looking token with a bad signature.
        jwks.restart().await;
        assert_eq!(
            v.verify_token(&bad_signature_token(&k1, &k3())).await.err(),
            refused(Invalid::BadSignature)
        );
    })
    .await;
}

#[tokio::test]
async fn server_errors_keep_old_keys_and_fetch_once_per_cooldown() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let jwks = JwksServer::start(&[&k1]).await;
        // A longer cooldown here: the background retry must not fall inside the loop below.
        let opts = RemoteJwksOptions {
            cooldown: Duration::from_secs(3),
            ..options()
        };
        let issuer = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
            .await
            .unwrap();
        let server = mcp(verifier(issuer)).await;
        jwks.set_fault(Fault::Status(500));
        tokio::time::sleep(Duration::from_millis(3100)).await;
        assert_unavailable(&call(&server, &token(&k2)).await);
        assert_eq!(jwks.hits(), 2);
        for _ in 0..10 {
            assert_unavailable(
                &call(
                    &server,
                    &token_with(&k1, &format!("x{}", rand::random::<u32>()), ISSUER),
                )
                .await,
            );
            assert_ok(&call(&server, &token(&k1)).await);
        }
        assert_eq!(jwks.hits(), 2, "one fetch per cooldown");
        // Recovery: the background task retries after the cooldown, with no request needed.
        jwks.set_fault(Fault::None);
        jwks.set_keys(&[&k1, &k2]);
        assert!(wait_until(Duration::from_secs(6), || jwks.hits() >= 3).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = jwks.hits();
        assert_ok(&call(&server, &token(&k2)).await);
        assert_eq!(jwks.hits(), before, "k2 came with the background retry");
    })
    .await;
}

#[tokio::test]
async fn lazy_start_with_server_down_gives_503_with_retry_after() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        jwks.set_fault(Fault::Status(503));
        let server = mcp(verifier(
            Issuer::with_jwks_uri(ISSUER, &jwks.url(), options()).unwrap(),
        ))
        .await;
        let r = call(&server, &token(&k1)).await;
        assert_unavailable(&r);
        assert!(!r.challenge.contains("invalid_token"), "{r:?}");
        assert_eq!(jwks.hits(), 1);
        for _ in 0..5 {
            assert_unavailable(&call(&server, &token(&k1)).await);
        }
        assert_eq!(jwks.hits(), 1, "no more than one fetch per cooldown");
        jwks.set_fault(Fault::None);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_ok(&call(&server, &token(&k1)).await);
    })
    .await;
}

#[tokio::test]
async fn slow_server_times_out() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let jwks = JwksServer::start(&[&k1]).await;
        jwks.set_delay(Duration::from_secs(3));
        // Eager: an error within about the timeout.
        let started = Instant::now();
        let err = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains("timeout"), "{err}");
        // Lazy: 503 within about the timeout.
        let server = mcp(verifier(
            Issuer::with_jwks_uri(ISSUER, &jwks.url(), options()).unwrap(),
        ))
        .await;
        let started = Instant::now();
        assert_unavailable(&call(&server, &token(&k1)).await);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        // Known keys survive a slow server.
        jwks.set_delay(Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_ok(&call(&server, &token(&k1)).await);
        jwks.set_delay(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let started = Instant::now();
        assert_unavailable(&call(&server, &token(&k2)).await);
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert_ok(&call(&server, &token(&k1)).await);
    })
    .await;
}

#[tokio::test]
async fn garbage_json_is_a_failed_fetch() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let jwks = JwksServer::start(&[&k1]).await;
        jwks.set_fault(Fault::Garbage);
        let err = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteKeysError::Jwks { .. }), "{err}");
        jwks.set_fault(Fault::None);
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
                .await
                .unwrap(),
        );
        jwks.set_fault(Fault::Garbage);
        past_cooldown().await;
        let hits = jwks.hits();
        assert!(matches!(
            v.verify_token(&token(&k2)).await.unwrap_err(),
            Rejection::Unavailable { .. }
        ));
        assert_eq!(jwks.hits(), hits + 1);
        v.verify_token(&token(&k1)).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let opts = || RemoteJwksOptions {
            max_body_bytes: 64 << 10,
            timeout: Duration::from_secs(5),
            ..options()
        };
        for fault in [Fault::Oversize, Fault::OversizeChunked] {
            jwks.set_fault(fault);
            let err = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts())
                .await
                .unwrap_err();
            assert!(
                matches!(err, RemoteKeysError::Fetch { .. }),
                "{fault:?}: {err}"
            );
            assert!(
                err.to_string().contains("max_body_bytes"),
                "{fault:?}: {err}"
            );
        }
        // Under the cap: fine.
        jwks.set_fault(Fault::None);
        Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts())
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn unusable_keys_are_skipped() {
    bounded(async {
        let (k1, k4) = (k1(), k4());
        let jwks = JwksServer::start(&[]).await;
        let odd = vec![
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "AKP", "kid": "pq", "alg": "ML-DSA-44", "pub": "AAAA"}),
            json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}),
            json!("not even an object"),
        ];
        jwks.set_raw_keys(odd.clone());
        let err = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("none of its 5 keys is usable"), "{err}");
        let mut mixed = odd;
        mixed.push(k1.jwk.clone());
        mixed.push(k4.jwk.clone());
        jwks.set_raw_keys(mixed);
        let v = verifier(Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options()).await.unwrap());
        v.verify_token(&token(&k1)).await.unwrap();
        v.verify_token(&token(&k4)).await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Cache lifetime
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn max_age_is_honoured() {
    bounded(async {
        let k1 = k1();
        let short = JwksServer::start(&[&k1]).await;
        short.set_cache_control("public, max-age=1");
        let long = JwksServer::start(&[&k1]).await;
        long.set_cache_control("public, max-age=3600");
        let none = JwksServer::start(&[&k1]).await;
        let opts = || RemoteJwksOptions {
            min_max_age: Duration::from_secs(1),
            default_max_age: Duration::from_secs(600),
            ..options()
        };
        let a = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &short.url(), opts())
                .await
                .unwrap(),
        );
        let b = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &long.url(), opts())
                .await
                .unwrap(),
        );
        let c = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &none.url(), opts())
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        // max-age=1: refreshed ahead of expiry (at 0.8 s), about twice in 2.1 s.
        assert!((2..=4).contains(&short.hits()), "{}", short.hits());
        assert_eq!(long.hits(), 1);
        assert_eq!(none.hits(), 1);
        for v in [&a, &b, &c] {
            v.verify_token(&token(&k1)).await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn max_age_is_bounded() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        // no-store would mean "fetch every time": the lower bound (2 s here) applies.
        jwks.set_cache_control("no-store");
        let opts = RemoteJwksOptions {
            min_max_age: Duration::from_secs(2),
            ..options()
        };
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
                .await
                .unwrap(),
        );
        for _ in 0..10 {
            v.verify_token(&token(&k1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(jwks.hits(), 1);
        // 80 % of the 2 s bound.
        assert!(wait_until(Duration::from_secs(3), || jwks.hits() == 2).await);
    })
    .await;
}

#[tokio::test]
async fn background_refresh_stops_when_the_verifier_is_dropped() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        jwks.set_cache_control("max-age=1");
        let opts = RemoteJwksOptions {
            min_max_age: Duration::from_secs(1),
            ..options()
        };
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
                .await
                .unwrap(),
        );
        assert!(wait_until(Duration::from_secs(3), || jwks.hits() >= 2).await);
        drop(v);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hits = jwks.hits();
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(jwks.hits(), hits, "no fetch after the verifier is gone");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Unknown key ids: single-flight, cooldown, negative cache
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let opts = || RemoteJwksOptions {
            cooldown: Duration::from_secs(2),
            ..options()
        };
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts())
                .await
                .unwrap(),
        );
        assert_eq!(jwks.hits(), 1);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let flood = random_kid_tokens(&k1, 200);
        let results = futures_util::future::join_all(flood.iter().map(|t| v.verify_token(t))).await;
        for r in &results {
            assert_eq!(
                r.as_ref().unwrap_err(),
                &Rejection::Invalid(Invalid::UnknownKey)
            );
        }
        assert_eq!(jwks.hits(), 2, "one fetch for the whole flood");
        // The same ones again: that fetch said they do not exist.
        for t in &flood {
            assert_eq!(
                v.verify_token(t).await.unwrap_err(),
                Rejection::Invalid(Invalid::UnknownKey)
            );
        }
        // New ones within the cooldown, one after the other: no fetch at all, and "try again
        // later", not "unknown key": no fetch has looked for them yet.
        for t in random_kid_tokens(&k1, 200) {
            assert!(matches!(
                v.verify_token(&t).await.unwrap_err(),
                Rejection::Unavailable { .. }
            ));
        }
        assert_eq!(jwks.hits(), 2);
        // Through HTTP too.
        let server = mcp(v.clone()).await;
        for t in random_kid_tokens(&k1, 20) {
            assert_unavailable(&call(&server, &t).await);
        }
        assert_eq!(jwks.hits(), 2);
        v.verify_token(&token(&k1)).await.unwrap();
        // After the cooldown, one more.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let results = futures_util::future::join_all(
            random_kid_tokens(&k1, 200)
                .iter()
                .map(|t| v.verify_token(t)),
        )
        .await;
        assert!(results.iter().all(Result::is_err));
        assert_eq!(jwks.hits(), 3);
    })
    .await;
}

#[tokio::test]
async fn requests_during_a_slow_refresh_share_it() {
    bounded(async {
        let (k1, k2) = (k1(), k2());
        let jwks = JwksServer::start(&[&k1]).await;
        let opts = RemoteJwksOptions {
            timeout: Duration::from_secs(2),
            ..options()
        };
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
                .await
                .unwrap(),
        );
        jwks.set_keys(&[&k1, &k2]);
        jwks.set_delay(Duration::from_millis(300));
        past_cooldown().await;
        let mut tokens = random_kid_tokens(&k1, 100);
        tokens.extend((0..100).map(|_| token(&k2)));
        let results =
            futures_util::future::join_all(tokens.iter().map(|t| v.verify_token(t))).await;
        assert!(results[..100].iter().all(Result::is_err));
        assert!(
            results[100..].iter().all(Result::is_ok),
            "{:?}",
            &results[100..]
        );
        assert_eq!(jwks.hits(), 2);
        // Known keys are answered at once, even while a refresh is running.
        jwks.set_delay(Duration::from_millis(1500));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let slow = tokio::spawn({
            let v = v.clone();
            let t = token_with(&k1, "another-unknown", ISSUER);
            async move { v.verify_token(&t).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        v.verify_token(&token(&k2)).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(200));
        assert!(slow.await.unwrap().is_err());
    })
    .await;
}

#[tokio::test]
async fn an_unknown_kid_is_remembered() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let opts = RemoteJwksOptions {
            unknown_kid_ttl: Duration::from_secs(30),
            ..options()
        };
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
                .await
                .unwrap(),
        );
        let stale = token_with(&k1, "retired-long-ago", ISSUER);
        past_cooldown().await;
        assert!(v.verify_token(&stale).await.is_err());
        assert_eq!(jwks.hits(), 2);
        past_cooldown().await;
        for _ in 0..5 {
            assert_eq!(
                v.verify_token(&stale).await.unwrap_err(),
                Rejection::Invalid(Invalid::UnknownKey)
            );
        }
        assert_eq!(
            jwks.hits(),
            2,
            "the same unknown kid does not spend the refresh budget"
        );
        // Another unknown kid still gets its refresh.
        assert!(
            v.verify_token(&token_with(&k1, "brand-new", ISSUER))
                .await
                .is_err()
        );
        assert_eq!(jwks.hits(), 3);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn redirects_are_limited() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let two = format!("{}/redirect/1", jwks.base());
        Issuer::with_jwks_uri_eager(ISSUER, &two, options())
            .await
            .unwrap();
        let many = format!("{}/redirect/5", jwks.base());
        let err = Issuer::with_jwks_uri_eager(ISSUER, &many, options())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("redirects"), "{err}");
        // To plain http on a host that is not loopback: refused before any connection.
        let away = format!("{}/away", jwks.base());
        let err = Issuer::with_jwks_uri_eager(ISSUER, &away, options())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

/// What the metadata server serves at one path.
#[derive(Clone)]
struct MetadataServer {
    docs: Arc<Mutex<Vec<(String, Value)>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

async fn metadata_handler(State(s): State<MetadataServer>, uri: axum::http::Uri) -> Response {
    let path = uri.path().to_owned();
    s.hits.lock().unwrap().push(path.clone());
    let doc = s
        .docs
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, d)| d.clone());
    match doc {
        Some(d) => axum::Json(d).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn metadata_server(jwks: &JwksServer) -> (TestServer, MetadataServer) {
    let state = MetadataServer {
        docs: Arc::default(),
        hits: Arc::default(),
    };
    let app = Router::new()
        .fallback(get(metadata_handler))
        .with_state(state.clone())
        .merge(jwks_router(jwks.shared.clone()));
    (common::serve_axum(app).await, state)
}

#[tokio::test]
async fn discovery_rfc8414_with_path_insertion() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let (server, meta) = metadata_server(&jwks).await;
        let issuer = server.url("/tenant");
        let jwks_uri = server.url("/jwks");
        meta.docs.lock().unwrap().push((
            "/.well-known/oauth-authorization-server/tenant".to_owned(),
            json!({"issuer": issuer, "jwks_uri": jwks_uri, "token_endpoint": server.url("/token")}),
        ));
        let found = Issuer::discover(&issuer, options()).await.unwrap();
        assert_eq!(found.issuer(), issuer);
        assert_eq!(found.jwks_uri(), Some(jwks_uri.as_str()));
        assert_eq!(
            *meta.hits.lock().unwrap(),
            ["/.well-known/oauth-authorization-server/tenant"]
        );
        assert_eq!(jwks.hits(), 1, "keys fetched eagerly");
        let v = verifier(found);
        v.verify_token(&token_with(&k1, "k1", &issuer))
            .await
            .unwrap();
        // A token from another issuer with the same key is refused.
        assert!(v.verify_token(&token(&k1)).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let (server, meta) = metadata_server(&jwks).await;
        let issuer = server.url("/realms/mcp");
        meta.docs.lock().unwrap().push((
            "/realms/mcp/.well-known/openid-configuration".to_owned(),
            json!({"issuer": issuer, "jwks_uri": server.url("/jwks")}),
        ));
        let found = Issuer::discover(&issuer, options()).await.unwrap();
        assert_eq!(found.jwks_uri(), Some(server.url("/jwks").as_str()));
        assert_eq!(
            *meta.hits.lock().unwrap(),
            [
                "/.well-known/oauth-authorization-server/realms/mcp",
                "/realms/mcp/.well-known/openid-configuration"
            ]
        );
        verifier(found)
            .verify_token(&token_with(&k1, "k1", &issuer))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn discovery_refuses_an_issuer_mismatch() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let (server, meta) = metadata_server(&jwks).await;
        let issuer = server.url("/tenant");
        // A trailing slash is already another issuer.
        for (path, named) in [
            (
                "/.well-known/oauth-authorization-server/tenant",
                format!("{issuer}/"),
            ),
            (
                "/tenant/.well-known/openid-configuration",
                "https://evil.example.com".to_owned(),
            ),
        ] {
            meta.docs.lock().unwrap().push((
                path.to_owned(),
                json!({"issuer": named, "jwks_uri": server.url("/jwks")}),
            ));
        }
        let err = Issuer::discover(&issuer, options()).await.unwrap_err();
        match &err {
            RemoteKeysError::IssuerMismatch {
                expected, found, ..
            } => {
                assert_eq!(expected, &issuer);
                assert_eq!(found, &format!("{issuer}/"));
            }
            other => panic!("{other}"),
        }
        assert_eq!(jwks.hits(), 0, "no keys fetched for a mismatched issuer");
    })
    .await;
}

#[tokio::test]
async fn discovery_errors_say_what_was_tried() {
    bounded(async {
        let k1 = k1();
        let jwks = JwksServer::start(&[&k1]).await;
        let (server, meta) = metadata_server(&jwks).await;
        let issuer = server.url("/nothing");
        let err = Issuer::discover(&issuer, options()).await.unwrap_err();
        assert!(matches!(err, RemoteKeysError::NoMetadata { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("/.well-known/oauth-authorization-server/nothing"),
            "{text}"
        );
        assert!(
            text.contains("/nothing/.well-known/openid-configuration"),
            "{text}"
        );
        assert!(text.contains("404"), "{text}");
        // A document without jwks_uri.
        let issuer = server.url("/nokeys");
        meta.docs.lock().unwrap().push((
            "/.well-known/oauth-authorization-server/nokeys".to_owned(),
            json!({"issuer": issuer}),
        ));
        let err = Issuer::discover(&issuer, options()).await.unwrap_err();
        assert!(err.to_string().contains("no jwks_uri"), "{err}");
        // Discovery then a JWKS URL that fails: an error, no panic.
        let issuer = server.url("/badkeys");
        meta.docs.lock().unwrap().push((
            "/.well-known/oauth-authorization-server/badkeys".to_owned(),
            json!({"issuer": issuer, "jwks_uri": server.url("/missing-jwks")}),
        ));
        let err = Issuer::discover(&issuer, options()).await.unwrap_err();
        assert!(matches!(err, RemoteKeysError::Fetch { .. }), "{err}");
        // A jwks_uri on plain http elsewhere is refused.
        let issuer = server.url("/insecure");
        meta.docs.lock().unwrap().push((
            "/.well-known/oauth-authorization-server/insecure".to_owned(),
            json!({"issuer": issuer, "jwks_uri": "http://keys.example.com/jwks"}),
        ));
        let err = Issuer::discover(&issuer, options()).await.unwrap_err();
        assert!(matches!(err, RemoteKeysError::Config(_)), "{err}");
        // An issuer URL on plain http elsewhere is refused before any request.
        let err = Issuer::discover("http://auth.example.com", options())
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteKeysError::Config(_)), "{err}");
    })
    .await;
}
