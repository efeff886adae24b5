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
    refusal::{
        future::{Outcome, Prelude, Sealed},
        grpc,
    },
    store::Store,
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

pin_project! {
    /// The inner service's response future. For a request with credentials it adds a failed
    /// authentication to the client's counter (waiting for the store, within its timeout)
    /// before the response is handed out, so that the client's next request sees it.
    pub struct Counting<F, B, St: Store> {
        #[pin]
        state: State<F, B, St>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, St: Store> {
        Inner { #[pin] fut: F, count: Option<Count<St>> },
        Incrementing { inc: St::Increment, res: Option<Response<B>> },
    }
}

impl<F, B, St: Store> Counting<F, B, St> {
    /// Counts nothing.
    pub(super) fn pass(fut: F) -> Self {
        Self {
            state: State::Inner { fut, count: None },
        }
    }

    /// Counts a failure under `key`.
    pub(super) fn count(fut: F, count: Count<St>) -> Self {
        Self {
            state: State::Inner {
                fut,
                count: Some(count),
            },
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
        let mut state = self.project().state;
        if let StateProj::Inner { fut, count } = state.as_mut().project() {
            let res = ready!(fut.poll(cx))?;
            match count.take() {
                Some(Count { key, grpc, shared }) if failed(&res, grpc) => {
                    let inc = shared.store.increment(key.as_bytes(), shared.window);
                    state.set(State::Incrementing {
                        inc,
                        res: Some(res),
                    });
                }
                _ => return Poll::Ready(Ok(res)),
            }
        }
        match state.project() {
            StateProj::Incrementing { inc, res } => {
                // Whatever the store answers: it logs its own failures; the response goes out.
                if ready!(Pin::new(inc).poll(cx)).is_err() {
                    crate::audit::metrics::store_error();
                }
                Poll::Ready(Ok(res.take().expect("Counting polled after completion")))
            }
            StateProj::Inner { .. } => unreachable!("left above"),
        }
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
    pub(super) count: Count<St>,
    pub(super) start: crate::audit::Start,
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
            count,
            start,
        } = *this
            .pending
            .take()
            .expect("ResponseFuture polled after completion");
        Poll::Ready(match count.shared.blocked(found, &count.key) {
            Some(retry_after) => Outcome::Refuse(super::refusal(start, retry_after, &req)),
            None => Outcome::Call(Counting::count(inner.call(req), count)),
        })
    }
}
