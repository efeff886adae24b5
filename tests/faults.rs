//! Faults of the JWKS endpoint and of the authorization server, each an automated test that
//! prints its figures (`FIGURE …` lines on stderr; `cargo test --test faults -- --nocapture`).
//! Single faults with exact fetch counts are in `tests/jwks.rs`; here every fault mode runs
//! through the same scenario, keys rotate under load, and the authorization server is down at
//! start-up.
//!
//! In every case: a valid token with a known key is accepted, a token whose key cannot be known
//! while keys cannot be fetched gets `503` with `Retry-After`, an invalid token gets `401`, no
//! request waits much past the fetch timeout, nothing panics, and fetches stay within one per
//! cooldown. Latencies are checked only against a generous multiple of the fetch timeout, with
//! `tokio::time::timeout` as a hang detector (a liveness check, not a performance one); they are
//! printed as figures.
#![cfg(all(
    feature = "remote-jwks",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))] // Remote keys and JWT verification.

mod common;
#[path = "common/jwks_server.rs"]
mod jwks_server;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use jwks_server::*;
use mcp_server_auth::{
    config::{ConfigError, EnvConfig},
    jwt::{Issuer, RemoteJwksOptions, RemoteKeysError},
    verifier::{Invalid, Rejection},
};

/// The fetch timeout of every scenario here (`options()`).
const FETCH_TIMEOUT: Duration = Duration::from_millis(300);
/// The cooldown of `options()`.
const COOLDOWN: Duration = Duration::from_secs(1);
/// No request may take longer than this: a hang detector, ten times the fetch timeout (the
/// hanging and slow endpoints would hold a request for 30 s and 10 s; on a busy machine with two
/// cores a request that waits for a failing fetch has been seen to take 0.95 s).
const LIVENESS: Duration = Duration::from_millis(10 * 300);

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

/// `call`, failing the test if it does not complete within [`LIVENESS`]; with its latency.
async fn timed_call(mcp: &Mcp, token: &str, what: &str) -> (Reply, Duration) {
    call_within(LIVENESS, mcp, token, what).await
}

/// `call`, failing the test if it does not complete within `limit`; with its latency.
async fn call_within(limit: Duration, mcp: &Mcp, token: &str, what: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = tokio::time::timeout(limit, call(mcp, token))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}: a hang"));
    (reply, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Every fault mode, one scenario
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Connections accepted, never answered.
    Hang,
    /// Answered, but long after the timeout (the handler sleeps 10 s).
    Slow,
    /// Connections reset at once.
    Reset,
    /// A 200 head and part of the body, then the connection is closed.
    Partial,
    /// `500 Internal Server Error`.
    Status500,
    /// 200 with a body that is not JSON.
    Garbage,
    /// The server stops listening (its task aborted, its listener dropped).
    Disappear,
}

const MODES: [Mode; 7] = [
    Mode::Hang,
    Mode::Slow,
    Mode::Reset,
    Mode::Partial,
    Mode::Status500,
    Mode::Garbage,
    Mode::Disappear,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Hang => "hang",
            Mode::Slow => "slow",
            Mode::Reset => "reset",
            Mode::Partial => "partial",
            Mode::Status500 => "500",
            Mode::Garbage => "garbage",
            Mode::Disappear => "disappear",
        }
    }

    fn start(self, jwks: &mut JwksServer) {
        match self {
            Mode::Hang => jwks.set_conn(Conn::Hang),
            Mode::Slow => jwks.set_delay(Duration::from_secs(10)),
            Mode::Reset => jwks.set_conn(Conn::Reset),
            Mode::Partial => jwks.set_conn(Conn::Partial),
            Mode::Status500 => jwks.set_fault(Fault::Status(500)),
            Mode::Garbage => jwks.set_fault(Fault::Garbage),
            Mode::Disappear => jwks.stop(),
        }
    }

    async fn end(self, jwks: &mut JwksServer) {
        jwks.set_conn(Conn::Serve);
        jwks.set_delay(Duration::ZERO);
        jwks.set_fault(Fault::None);
        if self == Mode::Disappear {
            jwks.restart().await;
        }
    }
}

/// The kinds of request of the scenario, and the answer each must get while the fault lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// A fresh token signed with k1, known from before the fault: 200.
    Valid,
    /// A made-up key id: 503 with `Retry-After` (the keys cannot be fetched).
    UnknownKid,
    /// k1's kid, signed by another key: 401.
    BadSignature,
    /// Signed with k1, expired: 401.
    Expired,
    /// Signed with k1, for another resource: 401.
    WrongAudience,
    /// A made-up key id, expired: 401 from its claims alone (no key could make it valid).
    ExpiredUnknownKid,
}

const KINDS: [Kind; 6] = [
    Kind::Valid,
    Kind::UnknownKid,
    Kind::BadSignature,
    Kind::Expired,
    Kind::WrongAudience,
    Kind::ExpiredUnknownKid,
];

fn mint(kind: Kind, k1: &TestKey, k3: &TestKey) -> String {
    match kind {
        Kind::Valid => token(k1),
        Kind::UnknownKid => random_kid_tokens(k1, 1).remove(0),
        Kind::BadSignature => bad_signature_token(k1, k3),
        Kind::Expired => expired_token(k1),
        Kind::WrongAudience => wrong_audience_token(k1),
        Kind::ExpiredUnknownKid => expired_token_with_kid(k1, "made-up-expired"),
    }
}

fn answer_is_right(kind: Kind, r: &Reply) -> bool {
    match kind {
        Kind::Valid => is_ok(r),
        Kind::UnknownKid => is_unavailable(r),
        Kind::BadSignature | Kind::Expired | Kind::WrongAudience | Kind::ExpiredUnknownKid => {
            is_invalid_token(r)
        }
    }
}

/// Concurrent requests per wave (bounded).
const WAVE: usize = 40;

#[derive(Default)]
struct Figures {
    requests: usize,
    ok: usize,
    unavailable: usize,
    invalid: usize,
    max_latency: Duration,
    attempts: usize,
    fault: Duration,
    recovery: Duration,
}

/// What a scenario runs against.
struct Rig {
    mode: Mode,
    jwks: JwksServer,
    server: Mcp,
    keys: [TestKey; 3],
}

/// The verifier has k1 (fetched eagerly), behind an MCP server.
async fn rig(mode: Mode) -> Rig {
    let (k1, k2, k3) = (k1(), k2(), k3());
    let jwks = JwksServer::start(&[&k1]).await;
    let issuer = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), options())
        .await
        .unwrap();
    let server = mcp(verifier(issuer)).await;
    assert_ok(&call(&server, &token(&k1)).await);
    assert_eq!(jwks.connections(), 1, "{}", mode.name());
    Rig {
        mode,
        jwks,
        server,
        keys: [k1, k2, k3],
    }
}

/// The fault starts; after the cooldown, waves of concurrent requests of every kind (the first
/// starts a fetch that fails, the second comes within the cooldown, the third after it); then
/// the fault ends with k2 published, and k2 is accepted once a fetch succeeds.
async fn scenario(rig: Rig) -> Figures {
    let Rig {
        mode,
        mut jwks,
        server,
        keys: [k1, k2, k3],
    } = rig;
    let what = mode.name();
    mode.start(&mut jwks);
    let fault_started = Instant::now();
    let before = jwks.connections();
    let mut f = Figures::default();
    for wave in 0..3 {
        if wave != 1 {
            past_cooldown().await;
        }
        let requests: Vec<(Kind, String)> = (0..WAVE)
            .map(|i| {
                let kind = KINDS[i % KINDS.len()];
                (kind, mint(kind, &k1, &k3))
            })
            .collect();
        let replies = join_all(requests.iter().map(|(_, t)| timed_call(&server, t, what))).await;
        for ((kind, _), (reply, latency)) in requests.iter().zip(replies) {
            assert!(
                answer_is_right(*kind, &reply),
                "fault {what}, wave {wave}: {kind:?} got {reply:?}"
            );
            f.requests += 1;
            match reply.status {
                200 => f.ok += 1,
                503 => f.unavailable += 1,
                _ => f.invalid += 1,
            }
            f.max_latency = f.max_latency.max(latency);
        }
    }
    f.attempts = jwks.connections() - before;
    f.fault = fault_started.elapsed();
    // At most one fetch per cooldown (the first may come at once).
    let bound = 1 + (f.fault.as_millis() / COOLDOWN.as_millis()) as usize;
    assert!(
        f.attempts <= bound,
        "fault {what}: {} fetch attempts in {:?}",
        f.attempts,
        f.fault
    );
    if mode != Mode::Disappear {
        assert!(
            f.attempts >= 1,
            "fault {what}: the unknown kids started no fetch"
        );
    }

    // Recovery, with k2 published: k2 gets 503 until a fetch succeeds, then 200; never 401.
    jwks.set_keys(&[&k1, &k2]);
    mode.end(&mut jwks).await;
    let recovering = Instant::now();
    let mut recovered = false;
    for _ in 0..50 {
        let (r, _) = timed_call(&server, &token(&k2), what).await;
        if is_ok(&r) {
            recovered = true;
            break;
        }
        assert!(is_unavailable(&r), "fault {what}, recovering: k2 got {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "fault {what}: k2 still refused 5 s after the fault ended"
    );
    f.recovery = recovering.elapsed();
    // The endpoint answers again: once a fetch may look for it, an unknown kid is a plain 401.
    past_cooldown().await;
    let (r, _) = timed_call(&server, &random_kid_tokens(&k1, 1)[0], what).await;
    assert_invalid_token(&r);
    assert_ok(&timed_call(&server, &token(&k1), what).await.0);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_mode_gets_correct_answers_without_hanging() {
    bounded(async {
        // Each mode has its own JWKS server, verifier and MCP server.
        // Set up one after the other (building HTTP clients takes CPU, and the eager fetches
        // have the short timeout), then run side by side, each in its own task.
        let mut rigs = Vec::new();
        for mode in MODES {
            rigs.push(rig(mode).await);
        }
        let started = Instant::now();
        let tasks: Vec<_> = rigs
            .into_iter()
            .map(|r| tokio::spawn(scenario(r)))
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        for (mode, f) in MODES.iter().zip(&all) {
            eprintln!(
                "FIGURE fault={} requests={} ok={} 503={} 401={} wrong=0 max_latency_ms={} \
                 fetch_attempts={} fault_ms={} recovery_ms={} timeout_ms={} cooldown_ms={}",
                mode.name(),
                f.requests,
                f.ok,
                f.unavailable,
                f.invalid,
                millis(f.max_latency),
                f.attempts,
                millis(f.fault),
                millis(f.recovery),
                millis(FETCH_TIMEOUT),
                millis(COOLDOWN),
            );
        }
        eprintln!(
            "FIGURE fault=all modes={} total_ms={}",
            MODES.len(),
            millis(started.elapsed())
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Keys rotate during load
// ---------------------------------------------------------------------------------------------

/// Where the rotation stands. The server's key set changes right *after* an odd phase begins;
/// an even phase begins only once the verifier was seen to have fetched the new set.
const STABLE_K1: usize = 0; // served {k1}, fetched {k1}
const PUBLISHING_K2: usize = 1; // served {k1, k2}, fetched {k1} or {k1, k2}
const STABLE_K1_K2: usize = 2; // served and fetched {k1, k2}
const RETIRING_K1: usize = 3; // served {k2}, fetched {k1, k2} or {k2}
const STABLE_K2: usize = 4; // served and fetched {k2}

/// What is correct for a request that ran while the phase went from `first` to `last`: the
/// verdict of a key set the verifier held at some moment of it.
///
/// - a k1 token: 200 while k1 is in every set the verifier may hold (`last` ≤ 2), 401 once it
///   is in none (`first` ≥ 4), either in between;
/// - a k2 token: refused while k2 is in no set it may hold (`last` = 0), 200 once it is in all
///   (`first` ≥ 2), either in between. Refused is 401, or 503 with `Retry-After` while no fetch
///   has looked for k2 since the request asked (a key published after the last fetch must not
///   get a 401).
///
/// Anything else (a 500, a missing `invalid_token`, a 503 for k1) is wrong at any time.
fn rotation_answer_is_right(k1_token: bool, first: usize, last: usize, r: &Reply) -> bool {
    let (must_accept, must_refuse) = if k1_token {
        (last <= STABLE_K1_K2, first >= STABLE_K2)
    } else {
        (first >= STABLE_K1_K2, last == STABLE_K1)
    };
    let refused = is_invalid_token(r) || (!k1_token && is_unavailable(r));
    if must_accept {
        is_ok(r)
    } else if must_refuse {
        refused
    } else {
        is_ok(r) || refused
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_during_load() {
    bounded(async {
        const CLIENTS: usize = 8;
        const MAX_PER_CLIENT: usize = 5_000;
        const HOLD: Duration = Duration::from_millis(400);
        let (k1, k2) = (Arc::new(k1()), Arc::new(k2()));
        let jwks = JwksServer::start(&[&k1]).await;
        // A key id found unknown is remembered for as long as the cooldown (5 min by default):
        // k2 tokens sent before k2 is published would otherwise be refused for that long. A
        // longer fetch timeout than elsewhere: a fetch that times out on a busy machine would
        // give a k2 token a 503, and the check is about rotation, not outages.
        const TIMEOUT: Duration = Duration::from_secs(2);
        let opts = RemoteJwksOptions {
            unknown_kid_ttl: COOLDOWN,
            timeout: TIMEOUT,
            ..options()
        };
        let started = Instant::now();
        let v = verifier(
            Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
                .await
                .unwrap(),
        );
        let server = Arc::new(mcp(v.clone()).await);
        // Tokens reused from small pools, so that cached verdicts are exercised too.
        let k1_pool: Arc<Vec<String>> = Arc::new((0..16).map(|_| token(&k1)).collect());
        let k2_pool: Arc<Vec<String>> = Arc::new((0..16).map(|_| token(&k2)).collect());
        let phase = Arc::new(AtomicUsize::new(STABLE_K1));
        let done = Arc::new(AtomicBool::new(false));
        let wrong = Arc::new(AtomicUsize::new(0));

        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (server, phase, done, wrong) =
                    (server.clone(), phase.clone(), done.clone(), wrong.clone());
                let (k1_pool, k2_pool) = (k1_pool.clone(), k2_pool.clone());
                tokio::spawn(async move {
                    // Per phase the request ended in: [k1 200, k1 401, k2 200, k2 401].
                    let mut counts = [[0usize; 4]; 5];
                    let mut max_latency = Duration::ZERO;
                    for i in 0..MAX_PER_CLIENT {
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                        let k1_token = (i + c) % 2 == 0;
                        let pool = if k1_token { &k1_pool } else { &k2_pool };
                        let t = &pool[(i / 2 + c) % pool.len()];
                        let first = phase.load(Ordering::SeqCst);
                        let (r, latency) = call_within(3 * TIMEOUT, &server, t, "rotation").await;
                        let last = phase.load(Ordering::SeqCst);
                        max_latency = max_latency.max(latency);
                        if !rotation_answer_is_right(k1_token, first, last, &r) {
                            wrong.fetch_add(1, Ordering::SeqCst);
                            eprintln!(
                                "wrong: {} token, phases {first}..={last}: {r:?}",
                                if k1_token { "k1" } else { "k2" }
                            );
                        }
                        let column = usize::from(!k1_token) * 2 + usize::from(!is_ok(&r));
                        counts[last][column] += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    (counts, max_latency)
                })
            })
            .collect();

        // The controller.
        tokio::time::sleep(HOLD).await;
        phase.store(PUBLISHING_K2, Ordering::SeqCst);
        jwks.set_keys(&[&k1, &k2]);
        let publishing = Instant::now();
        let mut seen = false;
        for _ in 0..100 {
            if v.verify_token(&token(&k2)).await.is_ok() {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen, "k2 not accepted 5 s after it was published");
        let k2_accepted_after = publishing.elapsed();
        phase.store(STABLE_K1_K2, Ordering::SeqCst);
        tokio::time::sleep(HOLD).await;

        phase.store(RETIRING_K1, Ordering::SeqCst);
        jwks.set_keys(&[&k2]);
        let retiring = Instant::now();
        let mut gone = false;
        for _ in 0..100 {
            // Nothing in the clients' traffic asks for a refresh (both keys are known): a made-up
            // key id does, as the background refresh at 80 % of max-age would.
            let _ = v.verify_token(&random_kid_tokens(&k1, 1)[0]).await;
            if matches!(
                v.verify_token(&token(&k1)).await,
                Err(Rejection::Invalid(Invalid::UnknownKey))
            ) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "k1 still accepted 5 s after it was withdrawn");
        let k1_refused_after = retiring.elapsed();
        phase.store(STABLE_K2, Ordering::SeqCst);
        tokio::time::sleep(HOLD).await;
        done.store(true, Ordering::SeqCst);

        let mut counts = [[0usize; 4]; 5];
        let mut max_latency = Duration::ZERO;
        for client in clients {
            let (c, l) = client.await.unwrap();
            for (total, part) in counts.iter_mut().zip(c) {
                for (t, p) in total.iter_mut().zip(part) {
                    *t += p;
                }
            }
            max_latency = max_latency.max(l);
        }
        let elapsed = started.elapsed();
        let fetches = jwks.hits();
        let requests: usize = counts.iter().flatten().sum();
        for (p, c) in counts.iter().enumerate() {
            eprintln!(
                "FIGURE fault=rotation phase={p} k1_ok={} k1_refused={} k2_ok={} k2_refused={}",
                c[0], c[1], c[2], c[3]
            );
        }
        eprintln!(
            "FIGURE fault=rotation clients={CLIENTS} requests={requests} wrong={} \
             max_latency_ms={} fetches={fetches} elapsed_ms={} k2_accepted_after_ms={} \
             k1_refused_after_ms={}",
            wrong.load(Ordering::SeqCst),
            millis(max_latency),
            millis(elapsed),
            millis(k2_accepted_after),
            millis(k1_refused_after),
        );
        assert_eq!(wrong.load(Ordering::SeqCst), 0, "wrong answers");
        // The stable phases each saw both kinds of token, with the one right answer.
        assert!(
            counts[STABLE_K1][0] > 0 && counts[STABLE_K1][3] > 0,
            "{counts:?}"
        );
        assert!(
            counts[STABLE_K1_K2][0] > 0 && counts[STABLE_K1_K2][2] > 0,
            "{counts:?}"
        );
        assert!(
            counts[STABLE_K2][1] > 0 && counts[STABLE_K2][2] > 0,
            "{counts:?}"
        );
        let bound = 1 + elapsed.as_millis().div_ceil(COOLDOWN.as_millis()) as usize;
        assert!(fetches <= bound, "{fetches} fetches in {elapsed:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The authorization server is down at start-up
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_with_the_server_down_or_hanging_is_a_clear_error() {
    bounded(async {
        // Nobody listening.
        let dead = format!("http://{}", dead_addr());
        let started = Instant::now();
        let err = tokio::time::timeout(LIVENESS, Issuer::discover(&dead, options()))
            .await
            .expect("discovery hung")
            .unwrap_err();
        let refused_ms = millis(started.elapsed());
        assert!(matches!(err, RemoteKeysError::NoMetadata { .. }), "{err}");
        let text = err.to_string();
        for tried in [
            format!("{dead}/.well-known/oauth-authorization-server"),
            format!("{dead}/.well-known/openid-configuration"),
        ] {
            assert!(text.contains(&tried), "{text}");
        }
        assert!(text.to_lowercase().contains("connect"), "{text}");

        // Accepting connections and never answering: each URL tried for the timeout, no more.
        let hanging = JwksServer::start(&[]).await;
        hanging.set_conn(Conn::Hang);
        let started = Instant::now();
        let err = tokio::time::timeout(2 * LIVENESS, Issuer::discover(&hanging.base(), options()))
            .await
            .expect("discovery hung")
            .unwrap_err();
        let hanging_ms = millis(started.elapsed());
        assert!(matches!(err, RemoteKeysError::NoMetadata { .. }), "{err}");
        assert!(err.to_string().contains("timeout"), "{err}");
        assert_eq!(hanging.connections(), 2, "one per well-known URL");
        eprintln!(
            "FIGURE fault=as_down_discover refused_ms={refused_ms} hanging_ms={hanging_ms} \
             timeout_ms={} urls_tried=2",
            millis(FETCH_TIMEOUT)
        );
    })
    .await;
}

#[tokio::test]
async fn lazy_keys_with_the_server_down_at_start_up_then_up() {
    bounded(async {
        let (k1, k3) = (k1(), k3());
        let addr = dead_addr();
        let url = format!("http://{addr}/jwks");
        let server = mcp(verifier(
            Issuer::with_jwks_uri(ISSUER, &url, options()).unwrap(),
        ))
        .await;
        // No key is known: whatever needs one gets 503 with Retry-After, never 401.
        let mut down = 0;
        for _ in 0..3 {
            for t in [
                token(&k1),
                random_kid_tokens(&k1, 1).remove(0),
                bad_signature_token(&k1, &k3),
            ] {
                let (r, _) = timed_call(&server, &t, "as down").await;
                assert_unavailable(&r);
                assert!(!r.challenge.contains("invalid_token"), "{r:?}");
                down += 1;
            }
        }
        // What needs no key is refused at once: malformed tokens, and tokens whose claims alone
        // refuse them (no signature could make an expired token or another resource's valid).
        let refused = [
            "not-a-jwt".to_owned(),
            "a.b.c".to_owned(),
            expired_token(&k1),
            wrong_audience_token(&k1),
        ];
        for t in &refused {
            assert_invalid_token(&timed_call(&server, t, "as down").await.0);
        }

        // The server comes up on that port.
        let jwks = JwksServer::start_on(addr, &[&k1]).await;
        let up = Instant::now();
        let mut waited = 0;
        loop {
            let (r, _) = timed_call(&server, &token(&k1), "as coming up").await;
            if is_ok(&r) {
                break;
            }
            assert_unavailable(&r);
            waited += 1;
            assert!(waited < 50, "k1 still refused 5 s after the server came up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let recovery_ms = millis(up.elapsed());
        past_cooldown().await;
        assert_invalid_token(&call(&server, &random_kid_tokens(&k1, 1)[0]).await);
        assert_invalid_token(&call(&server, &expired_token(&k1)).await);
        assert_invalid_token(&call(&server, &bad_signature_token(&k1, &k3)).await);
        assert_ok(&call(&server, &token(&k1)).await);
        eprintln!(
            "FIGURE fault=as_down_lazy requests_while_down={down} 503={down} \
             recovery_ms={recovery_ms} answers_503_while_coming_up={waited} fetches_once_up={}",
            jwks.hits()
        );
        assert!(jwks.hits() <= 2, "{}", jwks.hits());
    })
    .await;
}

#[tokio::test]
async fn env_config_with_the_issuer_down_is_a_config_error() {
    bounded(async {
        let dead = format!("http://{}", dead_addr());
        let config = EnvConfig::from_vars([
            ("MCP_AUTH_ISSUER_URL", dead.as_str()),
            ("MCP_AUTH_RESOURCE_URL", RESOURCE),
        ])
        .unwrap();
        let started = Instant::now();
        // The default fetch timeout is 5 s, per well-known URL.
        let result = tokio::time::timeout(Duration::from_secs(12), config.layer())
            .await
            .expect("config.layer() hung");
        let elapsed_ms = millis(started.elapsed());
        let Err(err) = result else {
            panic!("a layer was built with the issuer down")
        };
        assert!(matches!(err, ConfigError::Keys(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("JWT keys: "), "{text}");
        assert!(text.contains(&dead), "{text}");
        assert!(
            text.contains("no authorization server metadata found"),
            "{text}"
        );
        eprintln!("FIGURE fault=as_down_env_config elapsed_ms={elapsed_ms} error={text:?}");
    })
    .await;
}
