//! The auth layer around a bare hyper 1 service (no axum): hyper-util's auto connection builder,
//! `TowerToHyperService`, and a `tower::service_fn`. (HTTP/2 through the layer is covered by the
//! tonic tests.)

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use mcp_server_auth::{
    AuthInfo, AuthLayer,
    basic::BasicAuth,
    bearer::StaticBearer,
    verifier::{Verifier, VerifierExt},
};
use serde_json::{Value, json};
use tower::{Layer, service_fn};

use common::{TestServer, challenges, client, serve_with};

const LAPTOP: &str = "bGFwdG9wLXRva2VuLWZvci10ZXN0cy0wMQ";

/// Answers the caller's subject and whether the `Authorization` header reached it.
async fn handler(req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let body = json!({
        "subject": AuthInfo::from_extensions(req.extensions()).map(AuthInfo::subject),
        "saw_authorization": req.headers().contains_key(http::header::AUTHORIZATION),
    });
    Ok(http::Response::new(Full::new(Bytes::from(
        body.to_string(),
    ))))
}

/// Serves `layer` around [`handler`] with hyper (HTTP/1.1 and HTTP/2).
async fn serve<V>(layer: AuthLayer<V>) -> TestServer
where
    V: Verifier + Send + Sync + 'static,
{
    let service = layer.layer(service_fn(handler));
    serve_with(move |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
    .await
}

fn tokens() -> StaticBearer {
    StaticBearer::new([("laptop", LAPTOP)]).unwrap()
}

#[tokio::test]
async fn no_token_gets_a_challenge() {
    let server = serve(AuthLayer::new(tokens())).await;
    let res = client().get(server.url("/anything")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(challenges(&res), [r#"Bearer realm="mcp""#]);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.text().await.unwrap(), r#"{"error":"unauthorized"}"#);
}

#[tokio::test]
async fn wrong_token_is_invalid_token() {
    let server = serve(AuthLayer::new(tokens())).await;
    let res = client()
        .post(server.url("/mcp"))
        .bearer_auth("bm90LWEtdG9rZW4tdGhhdC1leGlzdHM")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenges(&res),
        [r#"Bearer realm="mcp", error="invalid_token""#]
    );
    assert_eq!(res.text().await.unwrap(), r#"{"error":"invalid_token"}"#);
}

#[tokio::test]
async fn good_token_reaches_the_service_without_the_header() {
    let server = serve(AuthLayer::new(tokens())).await;
    let res = client()
        .post(server.url("/mcp"))
        .bearer_auth(LAPTOP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("www-authenticate").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"subject": "laptop", "saw_authorization": false})
    );
}

#[tokio::test]
async fn forwarding_the_header_is_an_explicit_opt_out() {
    let layer = AuthLayer::builder(tokens())
        .forward_authorization_header(true)
        .build()
        .unwrap();
    let server = serve(layer).await;
    let body: Value = client()
        .get(server.url("/"))
        .bearer_auth(LAPTOP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"subject": "laptop", "saw_authorization": true})
    );
}

#[tokio::test]
async fn bearer_or_basic() {
    let basic = BasicAuth::builder()
        .user("alice", "correct-horse-battery-staple")
        .build()
        .unwrap();
    let server = serve(AuthLayer::new(tokens().or(basic))).await;

    let res = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenges(&res),
        [
            r#"Bearer realm="mcp""#,
            r#"Basic realm="mcp", charset="UTF-8""#
        ]
    );

    let body: Value = client()
        .get(server.url("/"))
        .basic_auth("alice", Some("correct-horse-battery-staple"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"subject": "alice", "saw_authorization": false})
    );

    let res = client()
        .get(server.url("/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let body: Value = client()
        .get(server.url("/"))
        .bearer_auth(LAPTOP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["subject"], "laptop");
}
