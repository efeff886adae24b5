//! Load, bounded and on loopback only: many concurrent clients for a fixed time (`LOAD_SECS`,
//! default 5) and at most a fixed number of requests, against a real axum server with the
//! `AuthLayer` and a `JwtVerifier` on remote keys (a JWKS server of our own), mixing valid,
//! badly signed, expired and wrong-audience tokens with a flood of unknown key ids. The token
//! cache is small, so that its cap is exercised.
//!
//! Asserted: zero wrong answers (no valid token refused, no invalid one accepted, no other
//! status), no transport error, at most one JWKS fetch per cooldown, the token cache within its
//! cap (sampled during the run and after it), resident memory growth under a generous bound.
//! Printed only (`FIGURE` lines; `-- --nocapture`): throughput, latency percentiles, RSS.
//! Deterministic apart from timing: the mix comes from fixed seeds.
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

use jwks_server::*;
use mcp_server_auth::{
    ResourceUrl,
    jwt::{DEFAULT_MAX_BYTES, Issuer, JwtVerifier, RemoteJwksOptions, TokenCacheConfig},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;

const CLIENTS: usize = 32;
/// Reqwest clients (each with its keep-alive pool), shared round-robin by the client tasks.
const HTTP_CLIENTS: usize = 8;
/// The most requests, whatever the time.
const MAX_REQUESTS: usize = 1_000_000;
/// The token cache cap: deliberately not a multiple of the cache's 16 shards, and far below the
/// number of distinct valid tokens, so the exact cap is exercised.
const CACHE_CAP: usize = 1_000;
const COOLDOWN: Duration = Duration::from_secs(1);
/// Catches unbounded growth, nothing finer.
const MAX_RSS_GROWTH_KIB: u64 = 256 << 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Valid,
    BadSignature,
    Expired,
    WrongAudience,
    UnknownKid,
}

const KINDS: [Kind; 5] = [
    Kind::Valid,
    Kind::BadSignature,
    Kind::Expired,
    Kind::WrongAudience,
    Kind::UnknownKid,
];

/// The mix, in per mille, in the order of [`KINDS`].
const WEIGHTS: [u32; 5] = [600, 100, 100, 100, 100];

/// Pre-minted tokens of each kind, in the order of [`KINDS`].
struct Pools([Vec<String>; 5]);

impl Pools {
    fn mint() -> Self {
        let (k1, k2) = (k1(), k2());
        let claims = |i: usize| {
            json!({
                "iss": ISSUER,
                "aud": RESOURCE,
                "sub": format!("user-{}", i % 97),
                "client_id": "load-client",
                "scope": "mcp",
                "iat": now(),
                "exp": now() + 600,
                "jti": format!("load-{i}"),
            })
        };
        // More valid tokens than the cache holds, so that it is always full.
        let valid = (0..5_000).map(|i| sign(&k1, "k1", &claims(i))).collect();
        let bad = (0..500)
            .map(|i| sign(&k2, "k1", &claims(100_000 + i)))
            .collect();
        let expired = (0..500)
            .map(|i| {
                let mut c = claims(200_000 + i);
                c["iat"] = json!(now() - 7200);
                c["exp"] = json!(now() - 3600);
                sign(&k1, "k1", &c)
            })
            .collect();
        let wrong_aud = (0..500)
            .map(|i| {
                let mut c = claims(300_000 + i);
                c["aud"] = json!("https://other.example.com/mcp");
                sign(&k1, "k1", &c)
            })
            .collect();
        // The flood: every token names a key id of its own.
        let unknown = (0..5_000)
            .map(|i| sign(&k1, &format!("flood-{i}"), &claims(400_000 + i)))
            .collect();
        Pools([valid, bad, expired, wrong_aud, unknown])
    }

    fn pick(&self, rng: &mut StdRng) -> (Kind, &str) {
        let mut roll = rng.random_range(0..WEIGHTS.iter().sum::<u32>());
        let mut i = 0;
        while roll >= WEIGHTS[i] {
            roll -= WEIGHTS[i];
            i += 1;
        }
        let pool = &self.0[i];
        (KINDS[i], &pool[rng.random_range(0..pool.len())])
    }
}

/// Whether `r` is a right answer for `kind`. The JWKS endpoint answers throughout: an unknown key
/// id is `401 invalid_token` once a fetch that started after it was asked for says it is not
/// there, and `503` with `Retry-After` before (within the cooldown, no fetch has looked for it;
/// it might be a key published since). Every other refusal is a plain `401`.
fn answer_is_right(kind: Kind, r: &Reply) -> bool {
    match kind {
        Kind::Valid => is_ok(r),
        Kind::UnknownKid => is_invalid_token(r) || is_unavailable(r),
        _ => is_invalid_token(r),
    }
}

/// `VmRSS` of this process, in KiB (0 where `/proc` is not there).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn load_secs() -> u64 {
    std::env::var("LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .clamp(1, 600)
}

#[derive(Default)]
struct Tally {
    /// Per kind: requests, wrong answers.
    requests: [usize; 5],
    wrong: [usize; 5],
    errors: usize,
    /// Microseconds, one per request.
    latencies: Vec<u32>,
    samples: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_mixed_tokens_with_an_unknown_kid_flood() {
    let secs = load_secs();
    let duration = Duration::from_secs(secs);
    let minting = Instant::now();
    let pools = Arc::new(Pools::mint());
    let mint_ms = minting.elapsed().as_millis();
    let rss_before = rss_kib();

    let k1 = k1();
    let jwks = JwksServer::start(&[&k1]).await;
    let opts = RemoteJwksOptions {
        cooldown: COOLDOWN,
        // Generous: a fetch that timed out on a busy machine would turn the flood's 401s into
        // 503s; the outages are `tests/faults.rs`'s business.
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let keys_since = Instant::now();
    let issuer = Issuer::with_jwks_uri_eager(ISSUER, &jwks.url(), opts)
        .await
        .unwrap();
    let verifier = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(issuer)
        .token_cache(TokenCacheConfig {
            max_entries: CACHE_CAP,
            max_bytes: DEFAULT_MAX_BYTES,
        })
        .build()
        .unwrap();
    let server = Arc::new(mcp(verifier.clone()).await);
    let clients: Vec<reqwest::Client> = (0..HTTP_CLIENTS).map(|_| common::client()).collect();

    let done = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicUsize::new(0));
    // Samples the cache size while the load runs.
    let monitor = tokio::spawn({
        let (verifier, done) = (verifier.clone(), done.clone());
        async move {
            let mut max_entries = 0;
            // Bounded: the load stops after `duration`; 20 samples a second, plus a margin.
            for _ in 0..(secs * 20 + 200) {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                max_entries = max_entries.max(verifier.cache_usage().unwrap().0);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            max_entries
        }
    });

    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (pools, server, issued) = (pools.clone(), server.clone(), issued.clone());
            let client = clients[c % HTTP_CLIENTS].clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(0x5eed_0000 + c as u64);
                let mut tally = Tally::default();
                let url = server.server.url("/mcp");
                while started.elapsed() < duration
                    && issued.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
                {
                    let (kind, token) = pools.pick(&mut rng);
                    let k = kind as usize;
                    let sent = Instant::now();
                    let res = client.post(&url).bearer_auth(token).send().await;
                    let latency = sent.elapsed();
                    tally.requests[k] += 1;
                    let Ok(res) = res else {
                        tally.errors += 1;
                        continue;
                    };
                    let header = |name| {
                        res.headers()
                            .get(name)
                            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let reply = Reply {
                        status: res.status().as_u16(),
                        retry_after: header(reqwest::header::RETRY_AFTER),
                        challenge: header(reqwest::header::WWW_AUTHENTICATE).unwrap_or_default(),
                    };
                    // Read the body, so that the connection goes back to the pool.
                    let _ = res.bytes().await;
                    tally
                        .latencies
                        .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                    if !answer_is_right(kind, &reply) {
                        tally.wrong[k] += 1;
                        if tally.samples.len() < 5 {
                            tally.samples.push(format!("{kind:?}: {reply:?}"));
                        }
                    }
                }
                tally
            })
        })
        .collect();

    let mut total = Tally::default();
    for task in tasks {
        let t = tokio::time::timeout(duration + Duration::from_secs(30), task)
            .await
            .expect("a client task hung")
            .unwrap();
        for k in 0..KINDS.len() {
            total.requests[k] += t.requests[k];
            total.wrong[k] += t.wrong[k];
        }
        total.errors += t.errors;
        total.latencies.extend(t.latencies);
        total.samples.extend(t.samples);
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let max_entries_seen = monitor.await.unwrap();
    let keys_for = keys_since.elapsed();
    let fetches = jwks.hits();
    let (entries, cache_bytes) = verifier.cache_usage().unwrap();
    let rss_after = rss_kib();

    let requests: usize = total.requests.iter().sum();
    let wrong: usize = total.wrong.iter().sum();
    total.latencies.sort_unstable();
    let percentile = |p: f64| {
        let l = &total.latencies;
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() - 1) as f64 * p).round() as usize;
        f64::from(l[i]) / 1000.0
    };
    let fetch_bound = 1 + keys_for.as_millis().div_ceil(COOLDOWN.as_millis()) as usize;
    let per_kind: Vec<String> = KINDS
        .iter()
        .enumerate()
        .map(|(k, kind)| format!("{kind:?}={}/{}", total.requests[k], total.wrong[k]))
        .collect();
    eprintln!(
        "FIGURE load secs={secs} clients={CLIENTS} http_clients={HTTP_CLIENTS} requests={requests} \
         rps={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} wrong={wrong} errors={}",
        requests as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
        total.errors,
    );
    eprintln!(
        "FIGURE load per_kind(requests/wrong) {}",
        per_kind.join(" ")
    );
    eprintln!(
        "FIGURE load jwks_fetches={fetches} fetch_bound={fetch_bound} cooldown_ms={} \
         cache_entries={entries} cache_max_seen={max_entries_seen} cache_cap={CACHE_CAP} \
         cache_bytes={cache_bytes}",
        COOLDOWN.as_millis()
    );
    eprintln!(
        "FIGURE load rss_before_mib={:.1} rss_after_mib={:.1} rss_growth_mib={:.1} mint_ms={mint_ms}",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after as f64 - rss_before as f64) / 1024.0,
    );

    assert_eq!(wrong, 0, "wrong answers: {:?}", total.samples);
    assert_eq!(total.errors, 0, "transport errors");
    assert!(total.requests.iter().all(|&n| n > 0), "every kind was sent");
    assert!(
        fetches <= fetch_bound,
        "{fetches} JWKS fetches in {keys_for:?}"
    );
    assert!(fetches >= 2, "the flood started no refresh");
    assert!(entries <= CACHE_CAP, "{entries} cached tokens");
    assert!(
        max_entries_seen <= CACHE_CAP,
        "{max_entries_seen} cached tokens"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_RSS_GROWTH_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
