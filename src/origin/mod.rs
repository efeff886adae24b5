//! Origin validation: the MCP transport's protection against DNS rebinding.
//!
//! MCP (Streamable HTTP, 2025-03-26 and later): "Servers **MUST** validate the `Origin` header
//! on all incoming connections to prevent DNS rebinding attacks. If the `Origin` header is
//! present and invalid, servers **MUST** respond with HTTP 403 Forbidden." [`OriginLayer`] does
//! exactly that, against an allow-list of origins ([`AllowedOrigins`]):
//!
//! | request | outcome |
//! |---|---|
//! | no `Origin` header (curl, SDK clients, server-to-server) | passed on |
//! | one `Origin` on the allow-list | passed on |
//! | an `Origin` not on the list, malformed, not ASCII, or more than one `Origin` field | `403` |
//! | `GET`/`HEAD`/`OPTIONS` of `/.well-known/oauth-protected-resource` or a path under it | passed on, whatever the `Origin` |
//!
//! The refusal is `403 Forbidden` with `Content-Type: application/json`,
//! `Cache-Control: no-store` and a JSON-RPC error response without `id`:
//! `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Origin not allowed"}}` (-32600, "Invalid
//! Request", lies outside the MCP-reserved and legacy ranges). It carries **no**
//! `WWW-Authenticate` header: MCP clients step up authorization on a `403` only when it carries
//! an `insufficient_scope` challenge, and a wrong origin is not something new scopes can fix.
//!
//! The Protected Resource Metadata document (RFC 9728) is public and must be fetchable by
//! browser-based clients on any origin, so requests to read it (`GET`, `HEAD` and preflight
//! `OPTIONS` in the `/.well-known/oauth-protected-resource` namespace) are never refused here;
//! they reach the [`AuthLayer`](crate::AuthLayer) (which serves the document) or whatever is
//! inside. Any other method on those paths is checked like every other request.
//!
//! The default allow-list, [`AllowedOrigins::localhost`], admits `http` and `https` origins on
//! `localhost`, `127.0.0.1` and `[::1]` (any port): what a local server, and browser tools such
//! as the MCP Inspector (`http://localhost:6274`), need. A remote server adds its web clients
//! with [`AllowedOrigins::allow`]. [`AllowedOrigins::any`] switches the check off.
//!
//! ```
//! use axum::{Router, routing::post};
//! use mcp_server_auth::origin::OriginLayer;
//!
//! let app: Router = Router::new()
//!     .route("/mcp", post(|| async { "ok" }))
//!     .layer(OriginLayer::localhost()); // only local web pages may call this server
//! ```
//!
//! # Where it goes in the stack
//!
//! From the outside in: CORS (tower-http's `CorsLayer`) → **Origin** → failed-auth throttling
//! ([`ThrottleLayer`](crate::throttle::ThrottleLayer)) → authentication
//! ([`AuthLayer`](crate::AuthLayer)) → MCP operation policy → the MCP service. In axum the last
//! `.layer(...)` is the outermost, so:
//! `.layer(mcp_policy).layer(auth).layer(throttle).layer(origin).layer(cors)`.
//!
//! - CORS goes outermost because tower-http answers every `OPTIONS` as a preflight and adds
//!   its headers to every response, this layer's `403` and the auth layer's `401` included, so
//!   that a browser can read them. (A preflight from a refused origin is answered by CORS
//!   without `Access-Control-Allow-Origin`, so the browser never sends the real request; if it
//!   does send one, this layer refuses it.)
//! - Origin comes before authentication because it does not depend on credentials: a request
//!   from a foreign page is refused with `403` whether or not it carries a valid token, and never
//!   gets a `401` challenge inviting it to authenticate.
//! - The two allow-lists should agree: an origin CORS admits but this layer refuses gets a
//!   readable `403`; one this layer admits but CORS refuses cannot read its responses. The
//!   simplest way is to let CORS ask the same [`AllowedOrigins`].
//! - A browser sends only the request headers CORS allows, and a script reads only the response
//!   headers it exposes: `Authorization` by name (`*` does not cover it), the `DPoP` header of
//!   a client with DPoP-bound tokens ([`crate::dpop`]), and on the way back `WWW-Authenticate`
//!   (or OAuth discovery never starts) and `DPoP-Nonce` (or a client asked for a nonce cannot
//!   read it).
//!
//! ```
//! use axum::{Router, routing::post};
//! use http::{HeaderName, Method, header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE}};
//! use mcp_server_auth::{AuthLayer, bearer::StaticBearer, origin::{AllowedOrigins, OriginLayer}};
//! use tower_http::cors::{AllowOrigin, CorsLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let origins = AllowedOrigins::localhost().allow("https://app.example.com")?;
//! let cors = CorsLayer::new()
//!     .allow_origin(AllowOrigin::predicate({
//!         let origins = origins.clone();
//!         move |origin, _| origins.is_allowed(origin)
//!     }))
//!     .allow_methods([Method::GET, Method::POST, Method::DELETE])
//!     .allow_headers([
//!         AUTHORIZATION,
//!         CONTENT_TYPE,
//!         ACCEPT,
//!         HeaderName::from_static("mcp-protocol-version"),
//!         HeaderName::from_static("mcp-method"),
//!         HeaderName::from_static("mcp-name"),
//!         HeaderName::from_static("mcp-session-id"),
//!         HeaderName::from_static("dpop"), // DPoP proofs (RFC 9449 §4.1)
//!     ])
//!     .expose_headers([
//!         WWW_AUTHENTICATE,
//!         HeaderName::from_static("mcp-session-id"),
//!         HeaderName::from_static("dpop-nonce"), // server nonces (RFC 9449 §8.1)
//!     ]);
//! let auth = AuthLayer::new(StaticBearer::new([("laptop", "c2VjcmV0LXRva2VuLWZvci1sYXB0b3A")])?);
//!
//! let app: Router = Router::new()
//!     .route("/mcp", post(|| async { "ok" }))
//!     .layer(auth)                      // inner: authentication
//!     .layer(OriginLayer::new(origins)) // then: Origin, independent of credentials
//!     .layer(cors);                     // outermost: CORS
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod allowed;

pub use allowed::{AllowedOrigins, OriginError};

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode,
    header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE},
};
use tower_layer::Layer;
use tower_service::Service;

use self::allowed::Refusal;
use crate::{
    audit::{self, Decision, Start},
    refusal::{ResponseBody, ResponseFuture, connection},
};

/// The body of every refusal: a JSON-RPC error response without `id`.
const REFUSAL_BODY: &[u8] =
    br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Origin not allowed"}}"#;

/// The namespace of the Protected Resource Metadata (RFC 9728), never refused.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// Whether the request reads the Protected Resource Metadata, which is public.
pub(crate) fn is_metadata_read(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        && path
            .strip_prefix(WELL_KNOWN)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A Tower layer that refuses requests whose `Origin` is not allowed with `403 Forbidden`. See
/// the [module documentation](self).
#[derive(Clone, Debug)]
pub struct OriginLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    allowed: AllowedOrigins,
    /// The refusal's headers and body, built once.
    headers: HeaderMap,
    body: Bytes,
}

impl Default for OriginLayer {
    /// [`OriginLayer::localhost`].
    fn default() -> Self {
        Self::localhost()
    }
}

impl OriginLayer {
    /// A layer admitting `allowed`.
    pub fn new(allowed: AllowedOrigins) -> Self {
        let body = Bytes::from_static(REFUSAL_BODY);
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        Self {
            shared: Arc::new(Shared {
                allowed,
                headers,
                body,
            }),
        }
    }

    /// A layer admitting local origins only: [`AllowedOrigins::localhost`].
    pub fn localhost() -> Self {
        Self::new(AllowedOrigins::localhost())
    }

    /// The origins admitted.
    pub fn allowed(&self) -> &AllowedOrigins {
        &self.shared.allowed
    }
}

impl<S> Layer<S> for OriginLayer {
    type Service = OriginService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`OriginLayer`].
#[derive(Clone, Debug)]
pub struct OriginService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> OriginService<S> {
    fn refusal<B>(&self) -> Response<ResponseBody<B>> {
        let mut res = Response::new(ResponseBody::full(self.shared.body.clone()));
        *res.status_mut() = StatusCode::FORBIDDEN;
        *res.headers_mut() = self.shared.headers.clone();
        res
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OriginService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let start = Start::now();
        let verdict = self.shared.allowed.admits(req.headers());
        match verdict {
            Ok(()) => {}
            Err(_) if is_metadata_read(req.method(), req.uri().path()) => {}
            Err(refusal) => {
                match refusal {
                    Refusal::NotAllowed(origin) => {
                        tracing::debug!(?origin, "refused: Origin not allowed")
                    }
                    Refusal::Repeated => tracing::debug!("refused: more than one Origin field"),
                }
                let response =
                    connection::close_if_body_unread(self.refusal(), req.version(), req.headers());
                refused(start, &response, &req);
                return ResponseFuture::refused(response);
            }
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}

/// Records the refusal `res` of `req`.
#[cold]
fn refused<B, R>(start: Start, res: &Response<B>, req: &Request<R>) {
    if start.recording() {
        Decision::refused(audit::Layer::Origin, res.status(), "origin")
            .scheme(audit::presented(req.headers()))
            .record(start, req.headers(), req.extensions());
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::header::{ORIGIN, WWW_AUTHENTICATE};
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn metadata_reads_are_recognized() {
        for (m, p, yes) in [
            (Method::GET, "/.well-known/oauth-protected-resource", true),
            (
                Method::GET,
                "/.well-known/oauth-protected-resource/mcp",
                true,
            ),
            (
                Method::HEAD,
                "/.well-known/oauth-protected-resource/mcp/",
                true,
            ),
            (
                Method::OPTIONS,
                "/.well-known/oauth-protected-resource/mcp",
                true,
            ),
            (
                Method::POST,
                "/.well-known/oauth-protected-resource/mcp",
                false,
            ),
            (
                Method::DELETE,
                "/.well-known/oauth-protected-resource",
                false,
            ),
            (Method::GET, "/.well-known/oauth-protected-resourcex", false),
            (Method::GET, "/mcp", false),
            (
                Method::GET,
                "/x/.well-known/oauth-protected-resource",
                false,
            ),
        ] {
            assert_eq!(is_metadata_read(&m, p), yes, "{m} {p}");
        }
    }

    async fn call(req: Request<()>) -> (Response<ResponseBody<String>>, Bytes) {
        let svc = OriginLayer::localhost().layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::from("inner")))
        }));
        let res = svc.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (Response::from_parts(parts, ResponseBody::empty()), bytes)
    }

    fn request(method: Method, path: &str, origins: &[&'static str]) -> Request<()> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        for &o in origins {
            req.headers_mut().append(ORIGIN, hv(o));
        }
        req
    }

    #[tokio::test]
    async fn service_refuses_and_passes() {
        let (res, body) = call(request(Method::POST, "/mcp", &["http://evil.com"])).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            res.headers()[CONTENT_LENGTH],
            REFUSAL_BODY.len().to_string()
        );
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Origin not allowed"}})
        );

        let twice = ["http://localhost:1", "http://localhost:1"];
        let (res, _) = call(request(Method::POST, "/mcp", &twice)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        for origins in [&[][..], &["http://localhost:6274"][..]] {
            let (res, body) = call(request(Method::POST, "/mcp", origins)).await;
            assert_eq!(res.status(), StatusCode::OK, "{origins:?}");
            assert_eq!(body, "inner");
        }

        let prm = "/.well-known/oauth-protected-resource/mcp";
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let (res, _) = call(request(m.clone(), prm, &["http://evil.com"])).await;
            assert_eq!(res.status(), StatusCode::OK, "{m}");
        }
        let (res, _) = call(request(Method::POST, prm, &["http://evil.com"])).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
}
