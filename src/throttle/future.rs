//! The throttle's response future, [`ResponseFuture`]: one state machine for the request's
//! whole way through the layer.
//!
//! The other layers of this crate share [`crate::ResponseFuture`], which maps the inner
//! service's response and knows nothing else. The throttle must also look at that response (a
//! `401` is a failed authentication to count) and may have to wait for its store twice (before
//! the call, and to count): nesting a counting future inside the shared one would put one more
//! future, and one more move of every response, on the path of every accepted request. So this
//! layer has its own, with the states it needs and no more: the accepted request pays for one
//! look at the status.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Shared, client::ClientKey};
use crate::{
    audit::Start,
    refusal::{ResponseBody, grpc},
    store::{Store, StoreError},
};

/// Whether `res` refuses credentials: `401`, or, to a gRPC call, `unauthenticated` (16), which
/// the auth layer sends as HTTP `200`.
fn failed<B>(res: &Response<B>, grpc: bool) -> bool {
    res.status() == StatusCode::UNAUTHORIZED || (grpc && grpc::is_unauthenticated(res))
}

/// What a request to count carries to its response: its key, whether it is a gRPC call, and
/// the layer.
pub(super) struct Count<St> {
    pub(super) key: ClientKey,
    pub(super) grpc: bool,
    pub(super) shared: Arc<Shared<St>>,
}

impl<St> Count<St> {
    /// What `req` carries, under `key`.
    pub(super) fn new<B>(key: ClientKey, shared: &Arc<Shared<St>>, req: &Request<B>) -> Self {
        Self {
            key,
            // Only a gRPC call can have its credentials refused with a `200`.
            grpc: grpc::is_grpc(req.version(), req.headers()),
            shared: shared.clone(),
        }
    }
}

/// What a request waiting for the store holds.
pub(super) struct Pending<S, ReqBody, St> {
    pub(super) req: Request<ReqBody>,
    pub(super) inner: S,
    pub(super) count: Count<St>,
    pub(super) start: Start,
}

pin_project! {
    /// The response future of [`ThrottleService`](super::ThrottleService): the inner service's
    /// response (its body wrapped in [`ResponseBody`]), or the `429`. For a request with
    /// credentials it adds a failed authentication to the client's counter (waiting for the
    /// store, within its timeout) before the response is handed out, so that the client's next
    /// request sees it.
    pub struct ResponseFuture<S, ReqBody, ResBody, St>
    where
        S: Service<Request<ReqBody>>,
        St: Store,
    {
        #[pin]
        state: State<S, ReqBody, ResBody, St>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, ResBody, St>
    where
        S: Service<Request<ReqBody>>,
        St: Store,
    {
        // Waiting for a store that does I/O (Redis) before the call. The request waits boxed:
        // the rare path keeps the future small.
        Checking { get: St::Get, pending: Option<Box<Pending<S, ReqBody, St>>> },
        Inner { #[pin] fut: S::Future, count: Option<Count<St>> },
        // Waiting for a store that does I/O to count a failure.
        Incrementing { inc: St::Increment, res: Option<Response<ResBody>> },
        Refused { res: Option<Response<ResponseBody<ResBody>>> },
    }
}

impl<S, ReqBody, ResBody, St> ResponseFuture<S, ReqBody, ResBody, St>
where
    S: Service<Request<ReqBody>>,
    St: Store,
{
    /// The inner service's response, counted under `count` if it refuses credentials.
    pub(super) fn inner(fut: S::Future, count: Option<Count<St>>) -> Self {
        Self {
            state: State::Inner { fut, count },
        }
    }

    /// A refusal decided at once.
    pub(super) fn refused(res: Response<ResponseBody<ResBody>>) -> Self {
        Self {
            state: State::Refused { res: Some(res) },
        }
    }

    /// The request waits for `get` first.
    pub(super) fn checking(get: St::Get, pending: Pending<S, ReqBody, St>) -> Self {
        Self {
            state: State::Checking {
                get,
                pending: Some(Box::new(pending)),
            },
        }
    }
}

/// Whatever the store answers to an increment: it logs its own failures; the response goes out.
fn counted(result: Result<crate::store::Counter, StoreError>) {
    if result.is_err() {
        crate::audit::metrics::store_error();
    }
}

impl<S, ReqBody, ResBody, St> Future for ResponseFuture<S, ReqBody, ResBody, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: Store,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Inner { fut, count } => {
                    let res = ready!(fut.poll(cx))?;
                    match count.take() {
                        Some(Count { key, grpc, shared }) if failed(&res, grpc) => {
                            let mut inc = shared.store.increment(key.as_bytes(), shared.window);
                            // A store in memory counts at once: no state to keep the response in.
                            if let Poll::Ready(result) = Pin::new(&mut inc).poll(cx) {
                                counted(result);
                                return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                            }
                            State::Incrementing {
                                inc,
                                res: Some(res),
                            }
                        }
                        _ => return Poll::Ready(Ok(res.map(ResponseBody::inner))),
                    }
                }
                StateProj::Checking { get, pending } => {
                    let found = ready!(Pin::new(get).poll(cx));
                    let Pending {
                        req,
                        mut inner,
                        count,
                        start,
                    } = *pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    match count.shared.blocked(found, &count.key) {
                        Some(retry_after) => State::Refused {
                            res: Some(super::refusal(start, retry_after, &req)),
                        },
                        None => State::Inner {
                            fut: inner.call(req),
                            count: Some(count),
                        },
                    }
                }
                StateProj::Incrementing { inc, res } => {
                    counted(ready!(Pin::new(inc).poll(cx)));
                    let res = res.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                }
                StateProj::Refused { res } => {
                    return Poll::Ready(Ok(res
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
            };
            state.set(next);
        }
    }
}
