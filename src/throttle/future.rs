//! The throttle's futures: [`Checking`], the prelude that waits for a store that does I/O, and
//! [`Counting`], the inner service's future that counts a failed authentication before it
//! hands the response out.

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
    refusal::future::{Outcome, Prelude, Sealed},
    store::Store,
};

/// Whether `res` refuses credentials: `401`, or a gRPC `unauthenticated` (16), which the auth
/// layer sends as HTTP `200`.
fn failed<B>(res: &Response<B>) -> bool {
    res.status() == StatusCode::UNAUTHORIZED
        || (res.status() == StatusCode::OK
            && res
                .headers()
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == b"16"))
}

pin_project! {
    /// The inner service's response future. For a request with credentials it adds a failed
    /// authentication to the client's counter (waiting for the store, within its timeout)
    /// before the response is handed out, so that the client's next request sees it.
    pub struct Counting<F, B, St: Store> {
        #[pin]
        fut: F,
        count: Option<(ClientKey, Arc<Shared<St>>)>,
        incrementing: Option<(St::Increment, Response<B>)>,
    }
}

impl<F, B, St: Store> Counting<F, B, St> {
    /// Counts nothing.
    pub(super) fn pass(fut: F) -> Self {
        Self {
            fut,
            count: None,
            incrementing: None,
        }
    }

    /// Counts a failure under `key`.
    pub(super) fn count(fut: F, key: ClientKey, shared: Arc<Shared<St>>) -> Self {
        Self {
            fut,
            count: Some((key, shared)),
            incrementing: None,
        }
    }
}

impl<F, B, E, St> Future for Counting<F, B, St>
where
    F: Future<Output = Result<Response<B>, E>>,
    St: Store,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.incrementing.is_none() {
            let res = ready!(this.fut.poll(cx))?;
            match this.count.take() {
                Some((key, shared)) if failed(&res) => {
                    let inc = shared.store.increment(key.as_bytes(), shared.window);
                    *this.incrementing = Some((inc, res));
                }
                _ => return Poll::Ready(Ok(res)),
            }
        }
        let (inc, _) = this
            .incrementing
            .as_mut()
            .expect("Counting polled after completion");
        // Whatever the store answers: it logs its own failures, and the response goes out.
        let _ = ready!(Pin::new(inc).poll(cx));
        let (_, res) = this.incrementing.take().expect("checked above");
        Poll::Ready(Ok(res))
    }
}

pin_project! {
    /// The throttle's work before it calls the inner service or refuses: waiting for a store
    /// that does I/O (Redis). The rest of the request waits boxed: the rare path keeps the
    /// future small.
    pub struct Checking<S, ReqBody, St: Store> {
        get: St::Get,
        pending: Option<Box<Pending<S, ReqBody, St>>>,
    }
}

/// What a request waiting for the store holds.
pub(super) struct Pending<S, ReqBody, St> {
    pub(super) req: Request<ReqBody>,
    pub(super) inner: S,
    pub(super) key: ClientKey,
    pub(super) shared: Arc<Shared<St>>,
}

impl<S, ReqBody, St: Store> Checking<S, ReqBody, St> {
    pub(super) fn new(get: St::Get, pending: Pending<S, ReqBody, St>) -> Self {
        Self {
            get,
            pending: Some(Box::new(pending)),
        }
    }
}

impl<S, ReqBody, St: Store> Sealed for Checking<S, ReqBody, St> {}

impl<S, ReqBody, ResBody, St> Prelude<Counting<S::Future, ResBody, St>, ResBody>
    for Checking<S, ReqBody, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: Store,
{
    fn poll_prelude(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<Counting<S::Future, ResBody, St>, ResBody>> {
        let this = self.project();
        let found = ready!(Pin::new(this.get).poll(cx));
        let Pending {
            req,
            mut inner,
            key,
            shared,
        } = *this
            .pending
            .take()
            .expect("ResponseFuture polled after completion");
        Poll::Ready(match shared.blocked(found, &key) {
            Some(retry_after) => {
                Outcome::Refuse(crate::refusal::throttled::refusal(retry_after, &req))
            }
            None => Outcome::Call(Counting::count(inner.call(req), key, shared)),
        })
    }
}
