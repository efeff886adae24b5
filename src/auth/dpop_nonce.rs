//! The `DPoP-Nonce` header on an accepted request's answer (RFC 9449 §8.2).
//!
//! A [`Dpop`](crate::dpop::Dpop) verifier with server nonces accepts a proof whose nonce is
//! from the previous time bucket, and asks for the answer to carry a fresh one, so that the
//! client's next proof has a current nonce and it never sees a `use_dpop_nonce` refusal while
//! it keeps making requests. The verifier cannot touch the answer, so the identity it returns
//! carries the nonce, and the auth layer's future for the inner service's answer
//! ([`WithDpopNonce`]) adds the header. Most answers have none: the future only carries an
//! empty option.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::auth::WithDpopNonce;
//! // The auth service's future, for a service `S`, names it: `WithDpopNonce<S::Future>`.
//! fn name<F>(_: &WithDpopNonce<F>) {}
//! # }
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

/// RFC 9449 §8.1.
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

pin_project! {
    /// The inner service's answer, with a `DPoP-Nonce` header when the verifier asked for one.
    pub struct WithDpopNonce<F> {
        #[pin]
        fut: F,
        nonce: Option<HeaderValue>,
    }
}

impl<F> WithDpopNonce<F> {
    pub(crate) fn new(fut: F, nonce: Option<HeaderValue>) -> Self {
        Self { fut, nonce }
    }
}

impl<F, B, E> Future for WithDpopNonce<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.fut.poll(cx))?;
        if let Some(nonce) = this.nonce.take() {
            res.headers_mut().insert(DPOP_NONCE, nonce);
        }
        Poll::Ready(Ok(res))
    }
}
