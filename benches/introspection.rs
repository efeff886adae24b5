//! Per-request cost of [`AuthLayer`] with an [`IntrospectionVerifier`] on a cache hit (the
//! token introspected once before measuring), against the no-auth baseline of the same run,
//! in process: the request is built once and cloned per iteration in both cases, the service
//! polled once with a no-op waker (a hit needs no I/O: anything else panics).
//!
//! Cases, in the criterion group `introspection`:
//! - `baseline/no_auth`: the inner service alone;
//! - `cache_hit`: the layer, the same opaque token every time (its answer cached);
//! - `cache_hit_beside_jwt`: the same, the verifier also holding a JWT verifier (an opaque
//!   token never reads as a JWT, so it costs a scan for dots).
//!
//! After criterion, a table gives each case's time from a manual loop in this process (lowest
//! over rounds of the mean time per request) and its cost over the baseline, against the
//! target: a cached introspection hit costs at most 1 µs more than no auth at all.
//!
//! `BENCH_SHORT=1 cargo bench --bench introspection` runs a short version (for CI);
//! `cargo test --benches` runs each case once and prints no table.

mod common;

use std::{
    convert::Infallible,
    env,
    future::{Ready, ready},
    hint::black_box,
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use criterion::Criterion;
use http::{Request, Response, StatusCode};
use mcp_server_auth::{
    AuthLayer, ResourceUrl,
    introspection::{ClientAuth, IntrospectionVerifier},
    jwt::{Algorithm, Issuer, JwtVerifier, KeySet},
};
use serde_json::json;
use tower::{Layer, service_fn};

const GROUP: &str = "introspection";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";
const TOKEN: &str = "b3BhcXVlLWJlbmNoLXRva2VuLTBlOGYzYzE2";
/// A cache hit costs at most this many ns over the baseline.
const TARGET_NS: f64 = 1000.0;

fn inner_ok(req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    drop(black_box(req));
    ready(Ok(Response::new(())))
}

type Run = Box<dyn FnMut() -> bool>;

/// An introspection endpoint on 127.0.0.1 that vouches for [`TOKEN`]; its URL.
fn endpoint(runtime: &tokio::runtime::Runtime) -> String {
    let answer = json!({"active": true, "sub": "user-42", "scope": "mcp:read", "iss": ISSUER,
        "aud": RESOURCE, "exp": 32_503_680_000u64, "client_id": "bench"})
    .to_string();
    let app = Router::new().route("/introspect", post(move || async move { answer }));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn verifier(url: &str, jwt: bool) -> IntrospectionVerifier {
    let mut builder = IntrospectionVerifier::builder(
        ResourceUrl::parse(RESOURCE).unwrap(),
        ClientAuth::client_secret_basic("bench", "bench-secret"),
    )
    .endpoint(url)
    .issuer(ISSUER);
    if jwt {
        let keys = KeySet::new()
            .add_hmac_secret(
                Some("k"),
                Algorithm::HS256,
                b"bench-only hmac secret, 48 bytes long!!",
            )
            .unwrap();
        builder = builder.jwt(
            JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
                .issuer(Issuer::with_keys(ISSUER, keys))
                .build()
                .unwrap(),
        );
    }
    builder.build().unwrap()
}

fn cases(runtime: &tokio::runtime::Runtime) -> Vec<(&'static str, Run)> {
    let url = endpoint(runtime);
    let req = common::request(&format!("Bearer {TOKEN}"));
    let mut base = service_fn(inner_ok);
    let base_req = req.clone();
    let mut cases: Vec<(&'static str, Run)> = vec![(
        "baseline/no_auth",
        Box::new(move || common::once(&mut base, black_box(&base_req).clone()) == StatusCode::OK),
    )];
    for (name, jwt) in [("cache_hit", false), ("cache_hit_beside_jwt", true)] {
        let v = verifier(&url, jwt);
        let info = runtime
            .block_on(v.verify_token(TOKEN))
            .expect("introspected");
        assert_eq!(info.subject(), "user-42");
        assert_eq!(v.cache_usage().0, 1, "{name}: the answer is not cached");
        let mut svc = AuthLayer::new(v).layer(service_fn(inner_ok));
        let req = req.clone();
        cases.push((
            name,
            Box::new(move || common::once(&mut svc, black_box(&req).clone()) == StatusCode::OK),
        ));
    }
    cases
}

/// Per case, the lowest over `rounds` of the mean ns per request over ~`round`.
fn manual(cases: &mut [(&'static str, Run)], round: Duration, rounds: u32) -> Vec<f64> {
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|(name, run)| {
            let mut n = 1u64;
            loop {
                let start = Instant::now();
                for _ in 0..n {
                    assert!(run(), "{name}: unexpected result");
                }
                if start.elapsed() >= round / 10 {
                    let per = start.elapsed().as_secs_f64() / n as f64;
                    break ((round.as_secs_f64() / per) as u64).max(1);
                }
                n *= 2;
            }
        })
        .collect();
    let mut best = vec![f64::INFINITY; cases.len()];
    for _ in 0..rounds {
        for (((name, run), best), &n) in cases.iter_mut().zip(&mut best).zip(&iters) {
            let start = Instant::now();
            let mut bad = 0;
            for _ in 0..n {
                bad += u64::from(!run());
            }
            assert_eq!(bad, 0, "{name}: unexpected result in the manual loop");
            *best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    best
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut cases = cases(&runtime);
    let args: Vec<String> = env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let benchmarking = has("--bench")
        && !has("--test")
        && !has("--list")
        && !args.iter().any(|a| a.starts_with("--profile-time"));
    let short = env::var("BENCH_SHORT").is_ok_and(|v| v == "1");

    let mut criterion = Criterion::default();
    if short {
        criterion = criterion
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
            .sample_size(10);
    }
    let mut criterion = criterion.configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    for (name, run) in &mut cases {
        group.bench_function(*name, |b| b.iter(|| assert!(run(), "{name}")));
    }
    group.finish();
    criterion.final_summary();
    if !benchmarking {
        return;
    }
    let (round, rounds) = if short {
        (Duration::from_millis(5), 40)
    } else {
        (Duration::from_millis(20), 60)
    };
    let ns = manual(&mut cases, round, rounds);
    let base = ns[0];
    println!();
    println!(
        "Introspection per-request cost — MANUAL LOOP in this process: lowest over {rounds} \
         rounds of ~{} ms; the request clone is in every case.",
        round.as_millis()
    );
    println!(
        "{:<24} {:>10} {:>14} {:>8}",
        "case", "ns/req", "Δ baseline", "target"
    );
    println!("{:<24} {:>10.1} {:>14} {:>8}", cases[0].0, base, "—", "");
    let mut all = true;
    for ((name, _), t) in cases.iter().zip(&ns).skip(1) {
        let over = t - base;
        let pass = over <= TARGET_NS;
        all &= pass;
        println!(
            "{:<24} {:>10.1} {:>+14.1} {:>8}",
            name,
            t,
            over,
            if pass { "PASS" } else { "FAIL" }
        );
    }
    println!(
        "TARGET cached introspection hit − baseline ≤ {TARGET_NS:.0} ns: {}",
        if all { "PASS" } else { "FAIL" }
    );
}
