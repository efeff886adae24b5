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
use http::{Extensions, HeaderMap, Method, Request, Response, StatusCode, request::Parts};
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
    audit::{Decision, Layer as Audited, Start},
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
    fn authorize<'o>(
        &self,
        ops: &'o [Operation],
        info: &AuthInfo,
    ) -> Result<(), (Rejection, &'o Operation)> {
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
        Err((
            self.admission
                .insufficient(required, info, Some(&self.known)),
            op,
        ))
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

/// Records this layer's refusal `res` of a request (its `headers` and `extensions`), for
/// `reason`, of the operation `op` if known.
fn record<B>(
    start: Start,
    res: &Response<B>,
    reason: &'static str,
    op: Option<&Operation>,
    headers: &HeaderMap,
    extensions: &Extensions,
) {
    if !start.recording() {
        return;
    }
    let info = extensions.get::<AuthInfo>();
    let mut decision = Decision::refused(Audited::McpScopes, res.status(), reason)
        .scheme(info.map(presented_scheme))
        .info(info);
    if let Some(op) = op {
        decision = decision.operation(op.method(), op.name());
    }
    decision.record(start, headers, extensions);
}

/// The reason code of a request whose MCP operation cannot be read.
const INVALID_MCP_REQUEST: &str = "invalid_mcp_request";
/// The reason code of a request whose body is larger than the limit.
const BODY_TOO_LARGE: &str = "body_too_large";

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
        let start = Start::now();
        // A refusal before the body is read leaves it unread, and is recorded.
        let refuse = |res, reason, op: Option<&Operation>| {
            let res = connection::close_if_body_unread(res, req.version(), req.headers());
            record(start, &res, reason, op, req.headers(), req.extensions());
            ResponseFuture::refused(res)
        };
        let Some(info) = req.extensions().get::<AuthInfo>() else {
            // Not behind the auth layer: fail closed.
            let rejection = Rejection::NoCredentials;
            return refuse(
                shared.refuse(&rejection, None),
                rejection.reason_code(),
                None,
            );
        };
        let header = match operation::read_headers(req.headers()) {
            Ok(header) => header,
            Err(e) => return refuse(operation_error(&e, None), INVALID_MCP_REQUEST, None),
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
                return refuse(
                    operation_error(&e, None),
                    INVALID_MCP_REQUEST,
                    Some(&h.operation),
                );
            }
            return match shared.authorize(std::slice::from_ref(&h.operation), info) {
                Ok(()) => ResponseFuture::inner(self.inner.call(req)),
                Err((rejection, op)) => refuse(
                    shared.refuse(&rejection, Some(info)),
                    rejection.reason_code(),
                    Some(op),
                ),
            };
        }
        let announced = req.body().size_hint().lower();
        if announced > shared.max_body_bytes as u64 {
            return refuse(too_large(shared.max_body_bytes), BODY_TOO_LARGE, None);
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
                start,
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
    start: Start,
}

impl<S> Reading<S> {
    /// A refusal sent before the body was read to its end, for `reason`; recorded.
    fn unread<B>(&self, res: Response<B>, reason: &'static str) -> Response<B> {
        let res = connection::close_if_body_unread(res, self.parts.version, &self.parts.headers);
        let (headers, extensions) = (&self.parts.headers, &self.parts.extensions);
        record(self.start, &res, reason, None, headers, extensions);
        res
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
            start,
        } = self;
        let bytes = buf.freeze();
        match shared.decide(&bytes, header.as_ref(), &parts, start) {
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
        start: Start,
    ) -> Option<Response<ResponseBody<B>>> {
        let refuse = |res, reason, op| {
            record(start, &res, reason, op, &parts.headers, &parts.extensions);
            Some(res)
        };
        let ops = match operation::from_body(body) {
            Ok(ops) => ops,
            Err(e) => return refuse(operation_error(&e, None), INVALID_MCP_REQUEST, None),
        };
        if let Some(header) = header
            && let Err(e) = operation::check_match(header, &ops)
        {
            return refuse(operation_error(&e, ops.id()), INVALID_MCP_REQUEST, None);
        }
        let info = parts.extensions.get::<AuthInfo>();
        let (rejection, op) = match info {
            None => (Rejection::NoCredentials, None),
            Some(info) => match self.authorize(ops.operations(), info) {
                Ok(()) => return None,
                Err((rejection, op)) => (rejection, Some(op)),
            },
        };
        refuse(self.refuse(&rejection, info), rejection.reason_code(), op)
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
                        return Poll::Ready(Outcome::Refuse(
                            r.unread(too_large(limit), BODY_TOO_LARGE),
                        ));
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
                    let res = refusal::json_rpc(
                        StatusCode::BAD_REQUEST,
                        -32600,
                        "the request body could not be read",
                        None,
                    );
                    return Poll::Ready(Outcome::Refuse(r.unread(res, INVALID_MCP_REQUEST)));
                }
                None => {
                    let r = this.reading.take().expect("checked above");
                    return Poll::Ready((*r).finish());
                }
            }
        }
    }
}
