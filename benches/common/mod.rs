//! What the benchmarks share: driving a service in-process, and the request they send.
#![allow(dead_code)]

use std::{
    convert::Infallible,
    env,
    future::Future,
    hint::black_box,
    path::{Path, PathBuf},
    pin::pin,
    task::{Context, Poll, Waker},
    time::SystemTime,
};

use http::{
    HeaderValue, Method, Request, Response, StatusCode,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE},
};
use serde_json::Value;
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

/// Where criterion writes its results, found as criterion finds it.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let meta: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(meta.get("target_directory")?.as_str()?))
    });
    from_metadata
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// Criterion's estimate for `case` in ns (the one it prints: slope, else mean), if this run
/// wrote it (not a stale file of an earlier run).
pub fn criterion_mean(dir: &Path, group: &str, case: &str, since: SystemTime) -> Option<f64> {
    let safe: String = case
        .chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect();
    let path = dir
        .join(group)
        .join(safe)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    ["slope", "mean"]
        .iter()
        .find_map(|k| json.get(k)?.get("point_estimate")?.as_f64())
}

/// The measured loop of `BENCH_COUNT` mode: `n` runs; returns how many went wrong. Never
/// inlined, so that `benches/instructions.sh` can have callgrind count inside it alone
/// (`--toggle-collect=<bench>::common::measured`): the setups sign tokens and proofs with random
/// nonces and blinding, so their instruction counts vary from run to run and would blur a
/// subtraction.
#[inline(never)]
pub fn measured(run: &mut dyn FnMut() -> bool, n: u64) -> u64 {
    let mut bad = 0;
    for _ in 0..n {
        if !run() {
            bad += 1;
        }
    }
    bad
}
