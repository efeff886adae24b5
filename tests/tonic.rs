//! A tonic gRPC server (the gRPC health service) behind the auth layer, called by a real tonic
//! client over HTTP/2: refusals are gRPC statuses (with `Cache-Control: no-store`), and a method
//! reads the caller's identity. The server accepts HTTP/1.1 too (as one serving gRPC-Web does):
//! there, a request with a gRPC content type gets an HTTP refusal, never a `200`.

mod common;

use std::{convert::Infallible, time::Duration};

use mcp_server_auth::{
    AuthInfo, AuthLayer, AuthMethod, ScopeRequirement, ScopeSet,
    bearer::StaticBearer,
    tonic::TonicRequestExt,
    verifier::{AuthRequest, Credentials, Rejection, Schemes, Verdict, Verifier},
};
use tonic::{
    Code, Request, Response, Status,
    body::Body,
    metadata::MetadataValue,
    server::NamedService,
    service::Interceptor,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_check_response::ServingStatus as Wire,
        health_client::HealthClient,
        health_server::{Health, HealthServer},
    },
};

use common::{TestServer, challenges, client, serve_with};

const LAPTOP: &str = "bGFwdG9wLXRva2VuLWZvci10ZXN0cy0wMQ";
const ADMIN: &str = "YWRtaW4tdG9rZW4tZm9yLXRoZS10ZXN0cw";
const WRONG: &str = "bm90LWEtdG9rZW4tdGhhdC1leGlzdHM";
/// A service name the health reporter knows as serving.
const KNOWN: &str = "mcp.Example";
const LIMIT: Duration = Duration::from_secs(30);

fn verifier() -> StaticBearer {
    StaticBearer::builder()
        .token("laptop", LAPTOP)
        .token_with_scopes("admin", ADMIN, ScopeSet::parse("mcp:admin").unwrap())
        .build()
        .unwrap()
}

/// `Server::builder().accept_http1(true).layer(auth).add_service(svc)` on a free loopback port.
async fn serve_grpc<V, S>(layer: AuthLayer<V>, service: S) -> TestServer
where
    V: Verifier,
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_with(move |listener| async move {
        Server::builder()
            .accept_http1(true)
            .layer(layer)
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    })
    .await
}

/// The stock tonic-health service, with [`KNOWN`] serving.
async fn serve_health<V: Verifier>(layer: AuthLayer<V>) -> TestServer {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(KNOWN, ServingStatus::Serving)
        .await;
    serve_grpc(layer, service).await
}

async fn channel(server: &TestServer) -> Channel {
    Channel::from_shared(server.url(""))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
struct Bearer(&'static str);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let value = MetadataValue::try_from(format!("Bearer {}", self.0)).unwrap();
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }
}

/// `Check(service)` with an optional bearer token, under [`LIMIT`].
async fn check(
    server: &TestServer,
    token: Option<&'static str>,
    service: &str,
) -> Result<Wire, Status> {
    let channel = channel(server).await;
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let call = async move {
        let response = match token {
            Some(t) => {
                HealthClient::with_interceptor(channel, Bearer(t))
                    .check(request)
                    .await
            }
            None => HealthClient::new(channel).check(request).await,
        };
        response.map(|r| r.into_inner().status())
    };
    tokio::time::timeout(LIMIT, call)
        .await
        .expect("the call took too long")
}

/// Asserts that a gRPC refusal says `Cache-Control: no-store`.
fn assert_no_store(status: &Status) {
    assert_eq!(
        status
            .metadata()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{status:?}"
    );
}

fn www_authenticate(status: &Status) -> String {
    status
        .metadata()
        .get("www-authenticate")
        .expect("no www-authenticate metadata")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn no_token_is_unauthenticated_with_a_challenge() {
    let server = serve_health(AuthLayer::new(verifier())).await;
    let status = check(&server, None, KNOWN).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "authentication required");
    assert_eq!(www_authenticate(&status), r#"Bearer realm="mcp""#);
    assert_no_store(&status);
}

#[tokio::test]
async fn wrong_token_is_unauthenticated() {
    let server = serve_health(AuthLayer::new(verifier())).await;
    let status = check(&server, Some(WRONG), KNOWN).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        www_authenticate(&status),
        r#"Bearer realm="mcp", error="invalid_token""#
    );
    assert_no_store(&status);
}

#[tokio::test]
async fn malformed_authorization_is_unauthenticated() {
    let server = serve_health(AuthLayer::new(verifier())).await;
    let mut client = HealthClient::new(channel(&server).await);
    let mut request = Request::new(HealthCheckRequest {
        service: KNOWN.to_owned(),
    });
    request
        .metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer a b"));
    let status = tokio::time::timeout(LIMIT, client.check(request))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "malformed credentials");
    assert_eq!(
        www_authenticate(&status),
        r#"Bearer realm="mcp", error="invalid_request""#
    );
    assert_no_store(&status);
}

#[tokio::test]
async fn good_token_reaches_the_service() {
    let server = serve_health(AuthLayer::new(verifier())).await;
    assert_eq!(
        check(&server, Some(LAPTOP), KNOWN).await.unwrap(),
        Wire::Serving
    );
    // The overall server health ("") is serving too.
    assert_eq!(
        check(&server, Some(LAPTOP), "").await.unwrap(),
        Wire::Serving
    );
    // An unknown service: the health service's own NOT_FOUND, so the call reached it.
    let status = check(&server, Some(LAPTOP), "nope").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn token_as_request_metadata_without_interceptor() {
    let server = serve_health(AuthLayer::new(verifier())).await;
    let mut client = HealthClient::new(channel(&server).await);
    let mut request = Request::new(HealthCheckRequest {
        service: KNOWN.to_owned(),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {LAPTOP}")).unwrap(),
    );
    let response = tokio::time::timeout(LIMIT, client.check(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.into_inner().status(), Wire::Serving);
}

#[tokio::test]
async fn missing_scope_is_permission_denied() {
    let layer = AuthLayer::builder(verifier())
        .required_scopes(ScopeRequirement::all_of(["mcp:admin"]).unwrap())
        .build()
        .unwrap();
    let server = serve_health(layer).await;

    let status = check(&server, Some(LAPTOP), KNOWN).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), "insufficient scope");
    assert_eq!(
        www_authenticate(&status),
        r#"Bearer realm="mcp", scope="mcp:admin", error="insufficient_scope""#
    );
    assert_no_store(&status);

    // No token at all is still Unauthenticated, with the scope to ask for.
    let status = check(&server, None, KNOWN).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        www_authenticate(&status),
        r#"Bearer realm="mcp", scope="mcp:admin""#
    );

    assert_eq!(
        check(&server, Some(ADMIN), KNOWN).await.unwrap(),
        Wire::Serving
    );
}

/// A verifier that must do I/O first (here: a short sleep), as a JWKS-backed one would; one
/// token stands for "the key server is down".
struct SlowVerifier(StaticBearer);

const KEY_SERVER_DOWN: &str = "a2V5LXNlcnZlci1pcy1kb3duLW5vdy0wMw";

impl Verifier for SlowVerifier {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }
    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let credentials = request.credentials();
        let down = matches!(credentials, Credentials::Bearer(t) if *t == KEY_SERVER_DOWN);
        let verdict = self.0.verify(request);
        Verdict::Pending(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if down {
                return Err(Rejection::Unavailable {
                    retry_after: Duration::from_secs(30),
                });
            }
            verdict.resolve().await
        }))
    }
}

#[tokio::test]
async fn asynchronous_verifier_and_unavailable() {
    let server = serve_health(AuthLayer::new(SlowVerifier(verifier()))).await;
    assert_eq!(
        check(&server, Some(LAPTOP), KNOWN).await.unwrap(),
        Wire::Serving
    );
    let status = check(&server, Some(WRONG), KNOWN).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = check(&server, Some(KEY_SERVER_DOWN), KNOWN)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "authentication temporarily unavailable");
    assert_eq!(status.metadata().get("retry-after").unwrap(), "30");
    assert!(status.metadata().get("www-authenticate").is_none());
    assert_no_store(&status);
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 with a gRPC content type: never a gRPC refusal.

const GRPC_TYPES: [&str; 3] = [
    "application/grpc",
    "application/grpc+json",
    "application/grpc+proto",
];

/// `GET /mcp` over HTTP/1.1 (a plain HTTP client) with `content_type` and an optional token.
async fn http1(server: &TestServer, content_type: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .get(server.url("/mcp"))
        .header("content-type", content_type);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    res
}

/// Asserts an HTTP refusal: `status`, these challenges, `no-store`, no gRPC status, `body`.
async fn assert_http_refusal(res: reqwest::Response, status: u16, challenge: &str, body: &str) {
    let label = format!("{:?}", res.headers());
    assert_eq!(res.status(), status, "{label}");
    assert_eq!(challenges(&res), [challenge], "{label}");
    assert_eq!(res.headers()["cache-control"], "no-store", "{label}");
    assert_eq!(res.headers()["content-type"], "application/json", "{label}");
    assert!(res.headers().get("grpc-status").is_none(), "{label}");
    assert_eq!(res.text().await.unwrap(), body, "{label}");
}

#[tokio::test]
async fn a_refusal_over_http1_is_never_200() {
    let server = serve_health(AuthLayer::new(verifier())).await;
    for content_type in GRPC_TYPES {
        let res = http1(&server, content_type, None).await;
        assert_http_refusal(
            res,
            401,
            r#"Bearer realm="mcp""#,
            r#"{"error":"unauthorized"}"#,
        )
        .await;
        let res = http1(&server, content_type, Some(WRONG)).await;
        assert_http_refusal(
            res,
            401,
            r#"Bearer realm="mcp", error="invalid_token""#,
            r#"{"error":"invalid_token"}"#,
        )
        .await;
    }
}

#[tokio::test]
async fn a_scope_refusal_over_http1_is_403_and_require_scopes_agrees() {
    let layer = AuthLayer::builder(verifier())
        .required_scopes(ScopeRequirement::all_of(["mcp:admin"]).unwrap())
        .build()
        .unwrap();
    let server = serve_health(layer).await;
    let res = http1(&server, "application/grpc", Some(LAPTOP)).await;
    let forbidden = r#"Bearer realm="mcp", scope="mcp:admin", error="insufficient_scope""#;
    assert_http_refusal(res, 403, forbidden, r#"{"error":"insufficient_scope"}"#).await;

    // The same through `require_scopes`, inside the auth layer.
    let auth = AuthLayer::new(verifier());
    let scopes = auth.require_scopes(ScopeRequirement::all_of(["mcp:admin"]).unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = serve_with(move |listener| async move {
        Server::builder()
            .accept_http1(true)
            .layer(auth)
            .layer(scopes)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    })
    .await;
    let res = http1(&server, "application/grpc+json", Some(LAPTOP)).await;
    assert_http_refusal(res, 403, forbidden, r#"{"error":"insufficient_scope"}"#).await;
    // Over HTTP/2 it stays a gRPC status, with no-store.
    let status = check(&server, Some(LAPTOP), KNOWN).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_no_store(&status);
}

// ---------------------------------------------------------------------------------------------
// A gRPC method that reads the caller's identity with `TonicRequestExt`.

/// A health service that reports SERVING for exactly one service name: the caller's subject.
struct CallerHealth;

#[tonic::async_trait]
impl Health for CallerHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let who = request
            .auth_info()
            .ok_or_else(|| Status::internal("no AuthInfo"))?;
        assert_eq!(who.method(), AuthMethod::StaticBearer);
        // No token passthrough: the header is gone from the metadata.
        if request.metadata().get("authorization").is_some() {
            return Err(Status::internal(
                "the authorization header reached the method",
            ));
        }
        let status = if request.get_ref().service == who.subject() {
            Wire::Serving
        } else {
            Wire::NotServing
        };
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

#[tokio::test]
async fn grpc_method_reads_the_caller() {
    let server = serve_grpc(AuthLayer::new(verifier()), HealthServer::new(CallerHealth)).await;
    assert_eq!(
        check(&server, Some(LAPTOP), "laptop").await.unwrap(),
        Wire::Serving
    );
    assert_eq!(
        check(&server, Some(ADMIN), "admin").await.unwrap(),
        Wire::Serving
    );
    assert_eq!(
        check(&server, Some(ADMIN), "laptop").await.unwrap(),
        Wire::NotServing
    );
    let status = check(&server, None, "laptop").await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[test]
fn tonic_request_ext_reads_the_extensions() {
    let info = AuthInfo::builder("ci", AuthMethod::StaticBearer)
        .scopes(ScopeSet::parse("mcp:read").unwrap())
        .build();
    let mut http = http::Request::new(());
    http.extensions_mut().insert(info);
    let request = Request::from_http(http);
    let who = request.auth_info().unwrap();
    assert_eq!(who.subject(), "ci");
    assert!(who.scopes().contains("mcp:read"));

    let anonymous = Request::from_http(http::Request::new(()));
    assert!(anonymous.auth_info().is_none());
}
