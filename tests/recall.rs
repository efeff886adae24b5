//! Recall: the layer admits a bearer token that a verifier remembers accepting before, without
//! parsing it again (`mcp_server_auth::recall`). These tests run a real axum server on
//! 127.0.0.1 with a verifier whose `recall` and `verify` disagree on purpose, so that each
//! shows which of the two the layer followed: what is recalled is admitted; a bound identity,
//! a DPoP token, a duplicated or oversized header are never admitted by recall.

mod common;

use axum::{Extension, Router, routing::post};
use common::{TestServer, challenges, client, serve_axum};
use mcp_server_auth::{
    AuthInfo, AuthLayer, AuthMethod,
    bearer::StaticBearer,
    credentials::Scheme,
    verifier::{
        AuthRequest, Invalid, Presented, Recall, Rejection, Schemes, Verdict, Verifier, VerifierExt,
    },
};

const REMEMBERED: &[u8] = b"remembered-token-0123456789";
/// Remembered too; longer than the smallest header limit (64 bytes).
const LONG: &[u8] = b"a-remembered-token-longer-than-sixty-four-bytes-0123456789abcdefghij";

/// Remembers one token as `identity`; refuses everything through `verify`.
struct Remembers {
    identity: AuthInfo,
}

impl Verifier for Remembers {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER.union(Schemes::DPOP)
    }
    fn verify(&self, _: &AuthRequest<'_>) -> Verdict {
        Verdict::Ready(Err(Rejection::Invalid(Invalid::UnknownToken)))
    }
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        if [REMEMBERED, LONG].contains(&presented.credentials()) {
            Recall::Accepted(self.identity.clone())
        } else {
            Recall::Refused
        }
    }
}

fn remembers(identity: AuthInfo) -> Remembers {
    Remembers { identity }
}

fn alice() -> AuthInfo {
    AuthInfo::builder("alice", AuthMethod::Custom("recall")).build()
}

async fn server<V: Verifier>(verifier: V) -> TestServer {
    serve_axum(
        Router::new()
            .route(
                "/mcp",
                post(|Extension(who): Extension<AuthInfo>| async move { who.subject().to_owned() }),
            )
            .layer(AuthLayer::new(verifier)),
    )
    .await
}

async fn post_with(server: &TestServer, authorization: &[&str]) -> (u16, String, Vec<String>) {
    let mut req = client().post(server.url("/mcp"));
    for value in authorization {
        req = req.header("authorization", *value);
    }
    let res = req.send().await.unwrap();
    let challenges = challenges(&res);
    (res.status().as_u16(), res.text().await.unwrap(), challenges)
}

fn bearer(token: &[u8]) -> String {
    format!("Bearer {}", std::str::from_utf8(token).unwrap())
}

#[tokio::test]
async fn a_token_the_verifier_recalls_is_admitted_without_verify() {
    let server = server(remembers(alice())).await;
    let (status, body, _) = post_with(&server, &[&bearer(REMEMBERED)]).await;
    assert_eq!((status, body.as_str()), (200, "alice"));
    // The scheme is case-insensitive and surrounding spaces are not part of the value.
    let spaced = format!("  bEaReR   {}\t", std::str::from_utf8(REMEMBERED).unwrap());
    assert_eq!(post_with(&server, &[&spaced]).await.0, 200);
    // Anything else goes to `verify`, which refuses it.
    let (status, _, challenges) = post_with(&server, &["Bearer another-token-0123456"]).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenges[0],
        r#"Bearer realm="mcp", error="invalid_token""#
    );
}

#[tokio::test]
async fn an_identity_bound_to_a_key_or_certificate_is_never_admitted_by_recall() {
    for bound in [
        AuthInfo::builder("alice", AuthMethod::Custom("recall"))
            .dpop_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
            .build(),
        AuthInfo::builder("alice", AuthMethod::Custom("recall"))
            .certificate_thumbprint("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2")
            .build(),
    ] {
        let server = server(remembers(bound)).await;
        assert_eq!(post_with(&server, &[&bearer(REMEMBERED)]).await.0, 401);
    }
}

#[tokio::test]
async fn a_dpop_token_is_never_admitted_by_recall() {
    let server = server(remembers(alice())).await;
    let dpop = format!("DPoP {}", std::str::from_utf8(REMEMBERED).unwrap());
    assert_eq!(post_with(&server, &[&dpop]).await.0, 401);
}

#[tokio::test]
async fn a_recalled_token_in_a_duplicated_or_oversized_header_is_refused_as_malformed() {
    let server = server(remembers(alice())).await;
    let (status, _, challenges) =
        post_with(&server, &[&bearer(REMEMBERED), &bearer(REMEMBERED)]).await;
    assert_eq!(status, 400);
    assert!(
        challenges[0].contains(r#"error="invalid_request""#),
        "{challenges:?}"
    );

    let small = serve_axum(
        Router::new().route("/mcp", post(|| async { "in" })).layer(
            AuthLayer::builder(remembers(alice()))
                .max_header_bytes(64)
                .build()
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(post_with(&small, &[&bearer(REMEMBERED)]).await.0, 200);
    assert_eq!(post_with(&small, &[&bearer(LONG)]).await.0, 400);
}

#[tokio::test]
async fn a_static_token_is_recalled_and_a_second_verifier_is_reached_past_it() {
    let statics = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
    let known = Presented::new(Scheme::Bearer, b"c2VjcmV0LXRva2VuLWZvci1jaQ");
    assert!(matches!(statics.recall(&known), Recall::Accepted(i) if i.subject() == "ci"));
    assert!(matches!(
        statics.recall(&Presented::new(Scheme::Bearer, REMEMBERED)),
        Recall::Refused
    ));
    // Static tokens first, then the remembering verifier: it is reached (the first would
    // refuse), and a static token is admitted as before.
    let server = server(statics.or(remembers(alice()))).await;
    assert_eq!(post_with(&server, &[&bearer(REMEMBERED)]).await.1, "alice");
    assert_eq!(
        post_with(&server, &["Bearer c2VjcmV0LXRva2VuLWZvci1jaQ"])
            .await
            .1,
        "ci"
    );
}

#[tokio::test]
async fn an_unsure_first_verifier_keeps_a_second_ones_memory_from_deciding() {
    /// Accepts one token through `verify` only (its `recall` is the default, `Unsure`).
    struct VerifiesOnly;
    impl Verifier for VerifiesOnly {
        fn schemes(&self) -> Schemes {
            Schemes::BEARER
        }
        fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
            Verdict::Ready(match request.credentials() {
                mcp_server_auth::verifier::Credentials::Bearer(t) if t.as_bytes() == REMEMBERED => {
                    Ok(AuthInfo::builder("first", AuthMethod::Custom("verify")).build())
                }
                _ => Err(Rejection::NoCredentials),
            })
        }
    }
    // `verify` would ask the first and accept as "first": recall must not answer "alice".
    let server = server(VerifiesOnly.or(remembers(alice()))).await;
    assert_eq!(post_with(&server, &[&bearer(REMEMBERED)]).await.1, "first");
}
