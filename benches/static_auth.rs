//! Per-request cost of [`AuthLayer`] with the static verifiers ([`StaticBearer`], [`BasicAuth`]),
//! measured in process: no sockets, no runtime.
//!
//! Each case is one service built once, in front of an inner service that answers at once
//! (`std::future::Ready`). Every iteration clones a prebuilt request (with its `Authorization`
//! header), calls `poll_ready` and `call`, and polls the response future once with a no-op waker:
//! static verifiers decide at once, so the future must be ready on its first poll (anything else
//! panics). The response is then dropped, so its cost (a refusal's headers and body) counts.
//!
//! Cases, all in the one criterion group `static_auth` so that they share conditions:
//! - `baseline/no_auth`: the inner service alone, with the same request clone;
//! - `bearer/{1,1000}_tokens/{accepted,rejected}`: tokens are 43-character base64url encodings
//!   of distinct pseudo-random 32-byte values; the rejected token has the same length;
//! - `bearer/1_token/{accepted,rejected}/reloadable`: the same token in a
//!   [`ReloadableBearer`](mcp_server_auth::reload::ReloadableBearer) (the set a
//!   `ReloadHandle` swaps, as `MCP_AUTH_BEARER_TOKENS_FILE` builds it);
//! - `basic/{accepted,rejected}`: one user; the rejected password has the same length;
//! - `bearer/1_token/accepted/peer`: as `bearer/1_token/accepted`, with the peer address in the
//!   request extensions (axum's `ConnectInfo`, as the example server has it; cloning it costs
//!   too);
//! - `throttle/bearer/1_token/{accepted,blocked}`: the same request through the failed-auth
//!   [`ThrottleLayer`] (in memory, limit 20) in front of the same auth layer; `blocked` comes
//!   from a client already at the limit (`429`, credentials not checked);
//!   `throttle/bearer/1_token/accepted/others_failed` is `accepted` with the failures of 100
//!   other clients in the store (the request's own key is looked up all the same; about one
//!   run in 160 its slot of the store's presence filter is shared with one of theirs, which adds
//!   a SipHash and a lock to each request of that run).
//!
//! Before measuring, every case is checked once (accepted → 200 from the inner service, which
//! sees the identity and no `Authorization` header; rejected → 401), and every status is
//! checked again inside the measured loops, so a broken setup cannot report numbers.
//!
//! After criterion, a table compares each case with the baseline. Its numbers come from a
//! bounded manual loop in this same process (the minimum over several rounds of the mean time
//! per request; rounds visit the cases in turn, so drift hits them all alike), not from
//! criterion; criterion's own estimate is shown next to it when its `estimates.json` from this run
//! can be found. The table checks the targets "static bearer costs at most 200 ns over the
//! baseline whatever the number of tokens" and "throttling adds at most 100 ns to an accepted
//! request" (`throttle/bearer/1_token/accepted` minus `bearer/1_token/accepted/peer`, both
//! shown against the baseline; PASS/FAIL; never panics on FAIL).
//!
//! `BENCH_SHORT=1 cargo bench --bench static_auth` runs a short version (for CI).
//! `cargo test --benches` runs each case once and prints no table; so does `--profile-time`
//! (for profilers: only the chosen case runs).

mod common;

use std::{
    convert::Infallible,
    env,
    future::{Ready, ready},
    hint::black_box,
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use axum::extract::ConnectInfo;
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use criterion::Criterion;
use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use mcp_server_auth::{
    AuthInfo, AuthLayer, Verifier, basic::BasicAuth, bearer::StaticBearer, reload::ReloadHandle,
    throttle::ThrottleLayer,
};
use tower::{Layer, service_fn};

/// The criterion group holding every case.
const GROUP: &str = "static_auth";
/// The target: static bearer costs at most this much over the baseline.
const TARGET_NS: f64 = 200.0;
/// The target: throttling adds at most this much to an accepted request.
const THROTTLE_TARGET_NS: f64 = 100.0;

/// The inner service: answers `200` with an empty body at once.
fn inner_ok(req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    drop(black_box(req));
    ready(Ok(Response::new(())))
}

/// Used once per case before measuring: the inner service of an accepted request must see the
/// identity and must not see the `Authorization` header.
fn inner_check(req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    assert!(
        req.extensions().get::<AuthInfo>().is_some(),
        "the inner service got no AuthInfo"
    );
    assert!(
        req.headers().get(AUTHORIZATION).is_none(),
        "the Authorization header reached the inner service"
    );
    ready(Ok(Response::new(())))
}

type Run = Box<dyn FnMut() -> StatusCode>;

struct Case {
    name: &'static str,
    expect: StatusCode,
    run: Run,
}

impl Case {
    fn baseline(authorization: &str) -> Self {
        let mut svc = service_fn(inner_ok);
        let req = common::request(authorization);
        Self {
            name: "baseline/no_auth",
            expect: StatusCode::OK,
            run: Box::new(move || common::once(&mut svc, black_box(&req).clone())),
        }
    }

    /// A case through `layer`; checks it once (status, and what the inner service sees).
    fn layered<V: Verifier>(
        name: &'static str,
        layer: &AuthLayer<V>,
        authorization: &str,
        expect: StatusCode,
    ) -> Self {
        let req = common::request(authorization);
        let mut check = layer.layer(service_fn(inner_check));
        let status = common::once(&mut check, req.clone());
        assert_eq!(status, expect, "{name}: unexpected status before measuring");
        let mut svc = layer.layer(service_fn(inner_ok));
        Self {
            name,
            expect,
            run: Box::new(move || common::once(&mut svc, black_box(&req).clone())),
        }
    }
}

/// A request from a client at 203.0.113.9, as axum passes it on when it serves with
/// `into_make_service_with_connect_info::<SocketAddr>()` (what the example server does).
fn request_with_peer(authorization: &str) -> Request<()> {
    let mut req = common::request(authorization);
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 9], 50_000))));
    req
}

/// The throttle cases: the accepted request with a peer address through `auth` alone, then
/// through the throttle in front of it, and a client at the limit.
fn throttle_cases(cases: &mut Vec<Case>, auth: &AuthLayer<StaticBearer>, good: &str, wrong: &str) {
    let req = request_with_peer(&format!("Bearer {good}"));
    let mut svc = auth.layer(service_fn(inner_ok));
    assert_eq!(common::once(&mut svc, req.clone()), StatusCode::OK);
    cases.push(Case {
        name: "bearer/1_token/accepted/peer",
        expect: StatusCode::OK,
        run: Box::new(move || common::once(&mut svc, black_box(&req).clone())),
    });

    let throttle = ThrottleLayer::new(20, Duration::from_secs(3600));
    let req = request_with_peer(&format!("Bearer {good}"));
    let mut check = throttle.layer(auth.layer(service_fn(inner_check)));
    assert_eq!(common::once(&mut check, req.clone()), StatusCode::OK);
    let mut svc = throttle.layer(auth.layer(service_fn(inner_ok)));
    cases.push(Case {
        name: "throttle/bearer/1_token/accepted",
        expect: StatusCode::OK,
        run: Box::new(move || common::once(&mut svc, black_box(&req).clone())),
    });

    // The store holds the failures of 100 other clients: the accepted request's own key is
    // still looked up (no shortcut for an empty store).
    let throttle = ThrottleLayer::new(20, Duration::from_secs(3600));
    let mut svc = throttle.layer(auth.layer(service_fn(inner_ok)));
    for i in 0..100u8 {
        let mut bad = common::request(&format!("Bearer {wrong}"));
        bad.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([198, 51, 100, i], 50_000))));
        assert_eq!(common::once(&mut svc, bad), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(throttle.store().map(|s| s.len()), Some(100));
    let req = request_with_peer(&format!("Bearer {good}"));
    cases.push(Case {
        name: "throttle/bearer/1_token/accepted/others_failed",
        expect: StatusCode::OK,
        run: Box::new(move || common::once(&mut svc, black_box(&req).clone())),
    });

    let throttle = ThrottleLayer::new(20, Duration::from_secs(3600));
    let mut svc = throttle.layer(auth.layer(service_fn(inner_ok)));
    let bad = request_with_peer(&format!("Bearer {wrong}"));
    for _ in 0..20 {
        assert_eq!(
            common::once(&mut svc, bad.clone()),
            StatusCode::UNAUTHORIZED
        );
    }
    let req = request_with_peer(&format!("Bearer {good}"));
    assert_eq!(
        common::once(&mut svc, req.clone()),
        StatusCode::TOO_MANY_REQUESTS
    );
    cases.push(Case {
        name: "throttle/bearer/1_token/blocked",
        expect: StatusCode::TOO_MANY_REQUESTS,
        run: Box::new(move || common::once(&mut svc, black_box(&req).clone())),
    });
}

/// Deterministic xorshift64* generator for the tokens.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// 32 pseudo-random bytes, base64url without padding: 43 characters.
    fn token(&mut self) -> String {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let token = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(token.len(), 43);
        token
    }
}

/// A bearer verifier with `n` tokens; returns it, one of its tokens, and a token of the same
/// length that is not one of them.
fn bearer_tokens(rng: &mut XorShift, n: usize) -> (StaticBearer, String, String) {
    let tokens: Vec<String> = (0..n).map(|_| rng.token()).collect();
    let wrong = rng.token();
    assert!(!tokens.contains(&wrong));
    let good = tokens[n / 2].clone();
    let verifier = StaticBearer::new(
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("client-{i}"), t.as_str())),
    )
    .expect("valid tokens");
    assert_eq!(verifier.len(), n);
    (verifier, good, wrong)
}

fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn build_cases() -> Vec<Case> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut cases = Vec::new();

    let (one, one_good, one_wrong) = bearer_tokens(&mut rng, 1);
    let (many, many_good, many_wrong) = bearer_tokens(&mut rng, 1000);

    cases.push(Case::baseline(&format!("Bearer {one_good}")));

    let reloadable = AuthLayer::new(ReloadHandle::new(one.clone()).verifier());
    let layer = AuthLayer::new(one);
    throttle_cases(&mut cases, &layer, &one_good, &one_wrong);
    cases.push(Case::layered(
        "bearer/1_token/accepted",
        &layer,
        &format!("Bearer {one_good}"),
        StatusCode::OK,
    ));
    cases.push(Case::layered(
        "bearer/1_token/rejected",
        &layer,
        &format!("Bearer {one_wrong}"),
        StatusCode::UNAUTHORIZED,
    ));

    cases.push(Case::layered(
        "bearer/1_token/accepted/reloadable",
        &reloadable,
        &format!("Bearer {one_good}"),
        StatusCode::OK,
    ));
    cases.push(Case::layered(
        "bearer/1_token/rejected/reloadable",
        &reloadable,
        &format!("Bearer {one_wrong}"),
        StatusCode::UNAUTHORIZED,
    ));

    let layer = AuthLayer::new(many);
    cases.push(Case::layered(
        "bearer/1000_tokens/accepted",
        &layer,
        &format!("Bearer {many_good}"),
        StatusCode::OK,
    ));
    cases.push(Case::layered(
        "bearer/1000_tokens/rejected",
        &layer,
        &format!("Bearer {many_wrong}"),
        StatusCode::UNAUTHORIZED,
    ));

    let password = "correct horse battery staple";
    let wrong = "correct horse battery stapel";
    assert_eq!(password.len(), wrong.len());
    let basic = BasicAuth::builder()
        .user("alice", password)
        .build()
        .expect("valid user");
    let layer = AuthLayer::new(basic);
    cases.push(Case::layered(
        "basic/accepted",
        &layer,
        &basic_header("alice", password),
        StatusCode::OK,
    ));
    cases.push(Case::layered(
        "basic/rejected",
        &layer,
        &basic_header("alice", wrong),
        StatusCode::UNAUTHORIZED,
    ));
    cases
}

/// Runs each case `iters` times per round, for `rounds` rounds taken in turn; returns, per case,
/// the lowest of the rounds' mean times per request, in ns.
fn manual(cases: &mut [Case], iters: u32, rounds: u32) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; cases.len()];
    for _ in 0..rounds {
        for (case, best) in cases.iter_mut().zip(&mut best) {
            let mut bad = 0u32;
            let start = Instant::now();
            for _ in 0..iters {
                if (case.run)() != case.expect {
                    bad += 1;
                }
            }
            let elapsed = start.elapsed();
            assert_eq!(
                bad, 0,
                "{}: unexpected status in the manual loop",
                case.name
            );
            *best = best.min(elapsed.as_nanos() as f64 / f64::from(iters));
        }
    }
    best
}

fn print_table(
    cases: &[Case],
    manual_ns: &[f64],
    criterion_ns: &[Option<f64>],
    iters: u32,
    rounds: u32,
) {
    let base = manual_ns[0];
    let crit_base = criterion_ns[0];
    println!();
    println!(
        "Per-request cost vs baseline — MANUAL LOOP in this process: lowest over {rounds} rounds \
         of the mean over {iters} requests (rounds take the cases in turn)."
    );
    println!(
        "The `criterion` columns are criterion's estimate from this run as it prints it (slope, \
         else mean), for comparison only (`-` if not found)."
    );
    println!();
    println!(
        "{:<30} {:>10} {:>12} {:>8} {:>14} {:>14}   target (≤ +{TARGET_NS:.0} ns)",
        "case", "ns/req", "Δ base (ns)", "ratio", "criterion (ns)", "crit Δ (ns)"
    );
    println!("{}", "-".repeat(118));
    let mut worst_bearer: Option<f64> = None;
    let mut all_pass = true;
    for ((case, &ns), crit) in cases.iter().zip(manual_ns).zip(criterion_ns) {
        let delta = ns - base;
        let crit_col = crit.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
        let crit_delta = match (crit, crit_base) {
            (Some(c), Some(b)) => format!("{:+.1}", c - b),
            _ => "-".to_owned(),
        };
        let verdict = if case.name.starts_with("bearer/") && !case.name.ends_with("/peer") {
            let pass = delta <= TARGET_NS;
            all_pass &= pass;
            worst_bearer = Some(worst_bearer.map_or(delta, |w: f64| w.max(delta)));
            if pass { "PASS" } else { "FAIL" }
        } else {
            ""
        };
        println!(
            "{:<30} {:>10.1} {:>12} {:>7.2}x {:>14} {:>14}   {verdict}",
            case.name,
            ns,
            if case.name == "baseline/no_auth" {
                "—".to_owned()
            } else {
                format!("{delta:+.1}")
            },
            ns / base,
            crit_col,
            crit_delta,
        );
    }
    println!("{}", "-".repeat(118));
    if let Some(worst) = worst_bearer {
        println!(
            "TARGET static bearer costs at most {TARGET_NS:.0} ns over the baseline whatever the \
             number of tokens: {} (worst bearer case: {worst:+.1} ns over {base:.1} ns)",
            if all_pass { "PASS" } else { "FAIL" },
        );
    }
    let find = |name: &str| {
        cases
            .iter()
            .position(|c| c.name == name)
            .map(|i| manual_ns[i])
    };
    if let (Some(alone), Some(throttled)) = (
        find("bearer/1_token/accepted/peer"),
        find("throttle/bearer/1_token/accepted"),
    ) {
        let added = throttled - alone;
        println!(
            "TARGET throttling (in memory) adds at most {THROTTLE_TARGET_NS:.0} ns to an accepted \
             request: {} (throttle/bearer/1_token/accepted {throttled:.1} ns vs \
             bearer/1_token/accepted/peer {alone:.1} ns: {added:+.1} ns; baseline {base:.1} ns)",
            if added <= THROTTLE_TARGET_NS {
                "PASS"
            } else {
                "FAIL"
            },
        );
    }
    for outcome in ["accepted", "rejected"] {
        if let (Some(plain), Some(reloadable)) = (
            find(&format!("bearer/1_token/{outcome}")),
            find(&format!("bearer/1_token/{outcome}/reloadable")),
        ) {
            println!(
                "reloadable: bearer {outcome} with a reloadable set vs a plain one: {:+.1} ns \
                 ({:.2}x)",
                reloadable - plain,
                reloadable / plain
            );
        }
        if let (Some(a), Some(b)) = (
            find(&format!("bearer/1_token/{outcome}")),
            find(&format!("bearer/1000_tokens/{outcome}")),
        ) {
            println!(
                "token count: bearer {outcome} with 1000 tokens vs 1 token: {:+.1} ns",
                b - a
            );
        }
    }
    println!();
}

fn main() {
    // Instruction-count mode, for `benches/instructions.sh` under callgrind: run one case
    // `BENCH_COUNT=case:iterations` times and exit (no criterion, no timing).
    if let Ok(spec) = env::var("BENCH_COUNT") {
        let (name, n) = spec.rsplit_once(':').expect("BENCH_COUNT=case:iterations");
        let n: u32 = n.parse().expect("BENCH_COUNT iterations");
        let mut cases = build_cases();
        let case = cases
            .iter_mut()
            .find(|c| c.name == name)
            .expect("BENCH_COUNT names an unknown case");
        for _ in 0..n {
            assert_eq!((case.run)(), case.expect, "{name}: unexpected status");
        }
        return;
    }
    let args: Vec<String> = env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // As criterion decides: `cargo bench` passes `--bench`; `cargo test --benches` does not.
    // No table either when listing, or when profiling (`--profile-time`).
    let benchmarking = has("--bench")
        && !has("--test")
        && !has("--list")
        && !args.iter().any(|a| a.starts_with("--profile-time"));
    let short = env::var("BENCH_SHORT").is_ok_and(|v| v == "1");

    let started = SystemTime::now();
    let mut cases = build_cases();

    let mut criterion = Criterion::default();
    if short {
        criterion = criterion
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
            .sample_size(10);
    }
    let mut criterion = criterion.configure_from_args();

    let mut group = criterion.benchmark_group(GROUP);
    for case in &mut cases {
        let mut bad = 0u64;
        group.bench_function(case.name, |b| {
            b.iter(|| {
                if (case.run)() != case.expect {
                    bad += 1;
                }
            })
        });
        assert_eq!(
            bad, 0,
            "{}: unexpected status while benchmarking",
            case.name
        );
    }
    group.finish();
    criterion.final_summary();

    if !benchmarking {
        return;
    }
    let (iters, rounds) = if short { (20_000, 5) } else { (200_000, 5) };
    // One untimed pass, so that every case starts warm.
    manual(&mut cases, iters / 10, 1);
    let manual_ns = manual(&mut cases, iters, rounds);
    let dir = common::criterion_dir();
    let criterion_ns: Vec<Option<f64>> = cases
        .iter()
        .map(|c| common::criterion_mean(&dir, GROUP, c.name, started))
        .collect();
    print_table(&cases, &manual_ns, &criterion_ns, iters, rounds);
}
