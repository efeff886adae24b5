//! What the benchmarks share: driving a service in-process, and the request they send.
#![allow(dead_code)]

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
};

use http::{
    HeaderValue, Method, Request, Response, StatusCode,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE},
};
use tower::Service;

/// One request through `svc`: `poll_ready`, `call`, one poll with a no-op waker. Returns the
/// status; the response is dropped here. Panics if the verdict needs more than one poll (no
/// verifier benchmarked here does I/O).
#[inline(always)]
pub fn once<S, B>(svc: &mut S, req: Request<()>) -> StatusCode
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => match e {},
        Poll::Pending => panic!("the service is not ready"),
    }
    let fut = pin!(svc.call(req));
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(res)) => black_box(res).status(),
        Poll::Ready(Err(e)) => match e {},
        Poll::Pending => panic!("the verifier must answer on the first poll"),
    }
}

/// A typical MCP request (`POST /mcp`, JSON) with the given `Authorization` header.
pub fn request(authorization: &str) -> Request<()> {
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .header(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap())
        .body(())
        .unwrap()
}
