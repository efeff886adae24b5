//! The MCP operation scope layer: [`McpScopeLayer`], built by [`AuthLayer::mcp_scopes`].
//!
//! [`AuthLayer::mcp_scopes`]: crate::AuthLayer::mcp_scopes

use std::{
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use serde_json::value::RawValue;
use tower_layer::Layer;
use tower_service::Service;

use super::{
    operation::{self, Operation, OperationError},
    operation_scopes::OperationScopes,
};
use crate::{
    admission::{Admission, presented_scheme},
    identity::AuthInfo,
    refusal::{
        self, ResponseBody, ResponseFuture, connection,
        future::{Outcome, Prelude},
    },
    scope::ScopeSet,
    verifier::Rejection,
};

/// The default limit on a JSON-RPC body this layer reads: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Requires the scopes each MCP operation needs ([`OperationScopes`]) of requests an
/// [`AuthLayer`](crate::AuthLayer) has authenticated. Build it with
/// [`AuthLayer::mcp_scopes`](crate::AuthLayer::mcp_scopes) and put it inside the auth layer,
/// in front of the MCP service; see the [module documentation](crate::mcp).
#[derive(Debug, Clone)]
pub struct McpScopeLayer {
    shared: Arc<Shared>,
}

#[derive(Debug, Clone)]
struct Shared {
    scopes: OperationScopes,
    /// Every scope `scopes` names.
    known: ScopeSet,
    /// `scopes.is_empty()`, fixed at construction: then every request passes straight through.
    empty: bool,
    admission: Arc<Admission>,
    max_body_bytes: usize,
    verify_headers: bool,
}

impl McpScopeLayer {
    pub(crate) fn new(scopes: OperationScopes, admission: Arc<Admission>) -> Self {
        Self {
            shared: Arc::new(Shared {
                known: scopes.all_scopes(),
                empty: scopes.is_empty(),
                scopes,
                admission,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                verify_headers: false,
            }),
        }
    }

    /// The largest body read to find the operation (default 4 MiB). A larger one is refused
    /// with `413 Payload Too Large`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.shared).max_body_bytes = limit;
        self
    }

    /// Reads the body even when the `Mcp-Method` / `Mcp-Name` headers could be trusted, and
    /// refuses a request whose headers disagree with it (`400`, JSON-RPC `-32020`). Turn this
    /// on when the MCP service behind does not check that its headers match its body (rmcp
    /// does, for the revisions of
    /// [`HEADER_CHECKING_REVISIONS`](operation::HEADER_CHECKING_REVISIONS)).
    pub fn verify_headers(mut self, verify: bool) -> Self {
        Arc::make_mut(&mut self.shared).verify_headers = verify;
        self
    }

    /// The policy.
    pub fn scopes(&self) -> &OperationScopes {
        &self.shared.scopes
    }

    /// Whether `info` may perform `op`, honouring the scope hierarchy of the auth layer. For
    /// example, to list only the tools a caller may call.
    pub fn permits(&self, op: &Operation, info: &AuthInfo) -> bool {
        self.shared
            .scopes
            .requirements(op)
            .all(|r| self.shared.admission.satisfies(r, info))
    }
}

impl<S> Layer<S> for McpScopeLayer {
    type Service = McpScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpScope {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`McpScopeLayer`].
#[derive(Debug, Clone)]
pub struct McpScope<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl Shared {
    /// Checks every operation; on refusal, the challenge names every scope all of them need.
    fn authorize(&self, ops: &[Operation], info: &AuthInfo) -> Result<(), Rejection> {
        let mut refused = None;
        for op in ops {
            if !self
                .scopes
                .requirements(op)
                .all(|r| self.admission.satisfies(r, info))
            {
                refused.get_or_insert(op);
            }
        }
        let Some(op) = refused else {
            return Ok(());
        };
        tracing::debug!(subject = info.subject(), operation = %op, "refused: insufficient scope");
        let required = ops
            .iter()
            .flat_map(|op| self.scopes.requirements(op))
            .flat_map(|r| r.challenge_scopes().iter());
        Err(self
            .admission
            .insufficient(required, info, Some(&self.known)))
    }

    fn refuse<B>(
        &self,
        rejection: &Rejection,
        info: Option<&AuthInfo>,
    ) -> Response<ResponseBody<B>> {
        self.admission
            .refuse(rejection, info.map(presented_scheme), false)
    }
}

fn operation_error<B>(e: &OperationError, id: Option<&RawValue>) -> Response<ResponseBody<B>> {
    tracing::debug!(reason = %e, "refused: MCP operation unreadable");
    refusal::json_rpc(StatusCode::BAD_REQUEST, e.code(), &e.to_string(), id)
}

fn too_large<B>(limit: usize) -> Response<ResponseBody<B>> {
    tracing::debug!(limit, "refused: MCP request body too large");
    refusal::json_rpc(
        StatusCode::PAYLOAD_TOO_LARGE,
        -32600,
        &format!("the request body is larger than {limit} bytes"),
        None,
    )
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for McpScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body + From<Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, ReadingBody<S, ReqBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        // Only POSTs carry JSON-RPC messages; GET (event streams) and DELETE need what the auth
        // layer already required.
        if req.method() != Method::POST || shared.empty {
            return ResponseFuture::inner(self.inner.call(req));
        }
        // A refusal before the body is read leaves it unread.
        let unread = |res| connection::close_if_body_unread(res, req.version(), req.headers());
        let Some(info) = req.extensions().get::<AuthInfo>() else {
            // Not behind the auth layer: fail closed.
            return ResponseFuture::refused(unread(shared.refuse(&Rejection::NoCredentials, None)));
        };
        let header = match operation::read_headers(req.headers()) {
            Ok(header) => header,
            Err(e) => return ResponseFuture::refused(unread(operation_error(&e, None))),
        };
        if let Some(h) = &header
            && h.validated_by_server
            && !shared.verify_headers
            && (operation::name_in_header(h.operation.method())
                || !operation::names_something(h.operation.method()))
        {
            // MCP 2026-07-28: the server must refuse a body that disagrees with these headers,
            // so they can be trusted without reading the body. Not for the methods that name
            // something the headers do not carry (resources/subscribe, completion/complete, …):
            // their name is read from the body below.
            if h.operation.name().is_none() && operation::name_in_header(h.operation.method()) {
                let e = OperationError::MissingName(h.operation.method().to_owned());
                return ResponseFuture::refused(unread(operation_error(&e, None)));
            }
            return match shared.authorize(std::slice::from_ref(&h.operation), info) {
                Ok(()) => ResponseFuture::inner(self.inner.call(req)),
                Err(rejection) => {
                    ResponseFuture::refused(unread(shared.refuse(&rejection, Some(info))))
                }
            };
        }
        let announced = req.body().size_hint().lower();
        if announced > shared.max_body_bytes as u64 {
            return ResponseFuture::refused(unread(too_large(shared.max_body_bytes)));
        }
        let (parts, body) = req.into_parts();
        // Take the service that was driven to readiness; leave a clone in its place.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ResponseFuture::prelude(ReadingBody {
            body,
            reading: Some(Box::new(Reading {
                parts,
                // At most the limit, so the announced size is a usize.
                buf: BytesMut::with_capacity(announced as usize),
                header: header.map(|h| h.operation),
                inner,
                shared: self.shared.clone(),
            })),
        })
    }
}

/// A request whose body is being read.
struct Reading<S> {
    parts: Parts,
    buf: BytesMut,
    header: Option<Operation>,
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Reading<S> {
    /// A refusal sent before the body was read to its end.
    fn unread<B>(&self, res: Response<B>) -> Response<B> {
        connection::close_if_body_unread(res, self.parts.version, &self.parts.headers)
    }

    /// Decides on the complete body: refuse, or hand the same bytes on.
    fn finish<ReqBody, ResBody>(self) -> Outcome<S::Future, ResBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        ReqBody: From<Bytes>,
    {
        let Reading {
            parts,
            buf,
            header,
            mut inner,
            shared,
        } = self;
        let bytes = buf.freeze();
        match shared.decide(&bytes, header.as_ref(), &parts) {
            None => Outcome::Call(inner.call(Request::from_parts(parts, ReqBody::from(bytes)))),
            Some(response) => Outcome::Refuse(response),
        }
    }
}

impl Shared {
    /// Decides on a complete body: `None` admits the request, `Some` is the refusal.
    fn decide<B>(
        &self,
        body: &[u8],
        header: Option<&Operation>,
        parts: &Parts,
    ) -> Option<Response<ResponseBody<B>>> {
        let ops = match operation::from_body(body) {
            Ok(ops) => ops,
            Err(e) => return Some(operation_error(&e, None)),
        };
        if let Some(header) = header
            && let Err(e) = operation::check_match(header, &ops)
        {
            return Some(operation_error(&e, ops.id()));
        }
        let info = parts.extensions.get::<AuthInfo>();
        let verdict = match info {
            None => Err(Rejection::NoCredentials),
            Some(info) => self.authorize(ops.operations(), info),
        };
        verdict.err().map(|rejection| self.refuse(&rejection, info))
    }
}

pin_project! {
    /// The MCP scope layer's work before it calls the inner service: reading the JSON-RPC body
    /// (bounded), to find the operations it asks for.
    pub struct ReadingBody<S, ReqBody> {
        #[pin]
        body: ReqBody,
        reading: Option<Box<Reading<S>>>,
    }
}

impl<S, ReqBody> crate::refusal::future::Sealed for ReadingBody<S, ReqBody> {}

impl<S, ReqBody, ResBody> Prelude<S::Future, ResBody> for ReadingBody<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + From<Bytes>,
{
    fn poll_prelude(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<S::Future, ResBody>> {
        let mut this = self.project();
        loop {
            let r = this
                .reading
                .as_mut()
                .expect("ResponseFuture polled after completion");
            match ready!(this.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers carry no JSON-RPC.
                    let Ok(mut data) = frame.into_data() else {
                        continue;
                    };
                    use bytes::Buf as _;
                    let limit = r.shared.max_body_bytes;
                    if r.buf.len().saturating_add(data.remaining()) > limit {
                        return Poll::Ready(Outcome::Refuse(r.unread(too_large(limit))));
                    }
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        let n = chunk.len();
                        r.buf.put_slice(chunk);
                        data.advance(n);
                    }
                }
                Some(Err(_)) => {
                    tracing::debug!("refused: the request body could not be read");
                    return Poll::Ready(Outcome::Refuse(r.unread(refusal::json_rpc(
                        StatusCode::BAD_REQUEST,
                        -32600,
                        "the request body could not be read",
                        None,
                    ))));
                }
                None => {
                    let r = this.reading.take().expect("checked above");
                    return Poll::Ready((*r).finish());
                }
            }
        }
    }
}
