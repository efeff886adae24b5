//! The one response future of every layer in this crate.
//!
//! Each layer either calls the inner service at once, refuses at once, or first has work of
//! its own to finish (the auth layer waits for a verifier that fetches keys; the MCP scope layer
//! reads the JSON-RPC body), after which it calls the inner service or refuses. One layer (the
//! session binding) also looks at the inner service's response before handing it out. So one
//! state machine serves them all: [`ResponseFuture`], with the layer's own work as a
//! [`Prelude`] and its look at the response as an [`After`]. The common case, a layer that
//! decided in `call`, pays for neither: [`NoPrelude`] cannot be built and [`NoAfter`] does
//! nothing.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use mcp_server_auth::{AuthLayer, bearer::StaticBearer};
//! use tower::{Service, ServiceExt, service_fn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tokens = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
//! let inner = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
//! let mut service = tower::Layer::layer(&AuthLayer::new(tokens), inner);
//! // `call` returns a `refusal::ResponseFuture`: here, a refusal decided at once.
//! let response = service.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), 401);
//! # });
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;

/// What a layer's [`Prelude`] decides: call the inner service (its future), or refuse.
#[derive(Debug)]
pub enum Outcome<F, B> {
    /// The inner service was called; this is its response future.
    Call(F),
    /// The refusal to send instead.
    Refuse(Response<ResponseBody<B>>),
}

mod sealed {
    /// Only this crate's layers have preludes and after-hooks: the traits are public only so
    /// that their futures can be named.
    pub trait Sealed {}
}

/// Work a layer finishes before it calls the inner service or refuses. Sealed: implemented by
/// this crate's layers only.
pub trait Prelude<F, B>: sealed::Sealed {
    /// Polls the work to its [`Outcome`].
    fn poll_prelude(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<F, B>>;
}

/// No prelude: the layer decided in `call`. It cannot be built.
#[derive(Debug, Clone, Copy)]
pub enum NoPrelude {}

impl sealed::Sealed for NoPrelude {}

impl<F, B> Prelude<F, B> for NoPrelude {
    fn poll_prelude(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Outcome<F, B>> {
        match *self.get_mut() {}
    }
}

/// A look at the inner service's response before it is handed out (not at refusals). Sealed:
/// implemented by this crate's layers only.
pub trait After: sealed::Sealed {
    /// Called once, with the inner service's response.
    fn after<B>(self, response: &Response<B>);
}

/// Nothing to do with the response.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAfter;

/// The one implementation point of [`Prelude`] and [`After`] outside this module.
pub(crate) use sealed::Sealed;

impl sealed::Sealed for NoAfter {}

impl After for NoAfter {
    fn after<B>(self, _: &Response<B>) {}
}

pin_project! {
    /// The response future of every service in this crate: the inner service's response (its
    /// body wrapped in [`ResponseBody`]), or a refusal, possibly after a [`Prelude`].
    pub struct ResponseFuture<F, B, P = NoPrelude, A = NoAfter> {
        #[pin]
        state: State<F, B, P>,
        after: Option<A>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, P> {
        Prelude { #[pin] prelude: P },
        Inner { #[pin] fut: F },
        Refused { response: Option<Response<ResponseBody<B>>> },
    }
}

impl<F, B, P, A> ResponseFuture<F, B, P, A> {
    /// The inner service's response.
    pub(crate) fn inner(fut: F) -> Self {
        Self {
            state: State::Inner { fut },
            after: None,
        }
    }

    /// A refusal decided at once.
    pub(crate) fn refused(response: Response<ResponseBody<B>>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
            after: None,
        }
    }

    /// The outcome of `prelude`, once it is done.
    pub(crate) fn prelude(prelude: P) -> Self {
        Self {
            state: State::Prelude { prelude },
            after: None,
        }
    }

    /// Runs `after` on the inner service's response, if there is one.
    pub(crate) fn with_after(mut self, after: A) -> Self {
        self.after = Some(after);
        self
    }
}

impl<F, B, E, P, A> Future for ResponseFuture<F, B, P, A>
where
    F: Future<Output = Result<Response<B>, E>>,
    P: Prelude<F, B>,
    A: After,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Prelude { prelude } => match ready!(prelude.poll_prelude(cx)) {
                    Outcome::Call(fut) => State::Inner { fut },
                    Outcome::Refuse(response) => State::Refused {
                        response: Some(response),
                    },
                },
                StateProj::Inner { fut } => {
                    let res = ready!(fut.poll(cx))?;
                    if let Some(after) = this.after.take() {
                        after.after(&res);
                    }
                    return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
            };
            this.state.set(next);
        }
    }
}
