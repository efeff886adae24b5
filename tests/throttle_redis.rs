//! Throttling counts shared in a real Redis (`redis-server`, the Debian package: installed by
//! this test with apt-get when missing, as `.ci/run` does), started on a free port by each test
//! and stopped by it: two instances of the example server trip the limit at their combined
//! count; when Redis stops, requests are judged as unthrottled within a bounded number of
//! tries; and the store's own operations keep their meaning in Redis.
#![cfg(feature = "redis")]

mod common;
#[path = "common/install.rs"]
mod install;
#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::{net::TcpListener, time::Duration};

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use mcp_server_auth::{
    config::EnvConfig,
    store::{RedisOptions, RedisStore, Store},
};
use serde_json::json;

use common::{TestServer, client_from, serve_axum_with_peers};
use redis_server::Redis;

const GOOD: &str = "Z29vZC10b2tlbi1mb3ItcmVkaXMtdGhyb3R0bGU";
const WRONG: &str = "d3JvbmctdG9rZW4tZm9yLXJlZGlzLXRocm90dGxl";
const A: [u8; 4] = [127, 0, 0, 1];
const B: [u8; 4] = [127, 0, 0, 2];

/// One instance of the example server counting in `redis`, with a limit of `limit`.
async fn instance(redis: &Redis, limit: &'static str) -> TestServer {
    let url = redis.url();
    let config = EnvConfig::from_vars([
        ("MCP_AUTH_BEARER_TOKEN", GOOD),
        ("MCP_AUTH_FAILURE_LIMIT", limit),
        ("MCP_AUTH_REDIS_URL", url.as_str()),
    ])
    .unwrap();
    assert!(config.redis_enabled());
    let (app, _shutdown) = quickstart::app(&config).await.unwrap();
    serve_axum_with_peers(app).await
}

async fn status(from: [u8; 4], server: &TestServer, token: &str) -> u16 {
    client_from(from)
        .post(server.url("/mcp"))
        .header(CONTENT_TYPE, "application/json")
        .header("accept", "application/json, text/event-stream")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(
            &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"redis-test","version":"0"}}}),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn two_instances_sharing_redis_trip_the_limit_at_the_combined_count_and_fail_open_without_it()
{
    let mut redis = Redis::start();
    let one = instance(&redis, "4").await;
    let two = instance(&redis, "4").await;

    assert_eq!(status(A, &one, WRONG).await, 401);
    assert_eq!(status(A, &two, WRONG).await, 401);
    assert_eq!(status(A, &one, WRONG).await, 401);
    // Three failures between them: under the limit of each, and of both.
    assert_eq!(status(A, &one, GOOD).await, 200);
    assert_eq!(status(A, &two, GOOD).await, 200);
    assert_eq!(status(A, &two, WRONG).await, 401);
    // The fourth, on either instance, blocks the client on both.
    assert_eq!(status(A, &one, GOOD).await, 429);
    assert_eq!(status(A, &two, GOOD).await, 429);
    assert_eq!(status(B, &one, GOOD).await, 200);
    assert_eq!(status(B, &two, GOOD).await, 200);

    // Redis goes away: the blocked client is judged as if nothing were counted (fail open),
    // after at most a few requests that time out.
    redis.stop();
    let mut tries = 0;
    let through = loop {
        tries += 1;
        if status(A, &one, GOOD).await == 200 {
            break true;
        }
        if tries == 50 {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        through,
        "still blocked {tries} requests after Redis stopped"
    );
    // Its credentials are still checked, on both instances.
    assert_eq!(status(A, &one, WRONG).await, 401);
    for _ in 0..50 {
        if status(A, &two, GOOD).await == 200 {
            break;
        }
    }
    assert_eq!(status(A, &two, GOOD).await, 200);
    assert_eq!(status(A, &two, WRONG).await, 401);
}

#[tokio::test]
async fn the_redis_store_counts_in_a_fixed_window_and_marks_once() {
    let redis = Redis::start();
    let store = RedisStore::connect(&redis.url(), RedisOptions::default())
        .await
        .unwrap();
    let window = Duration::from_secs(30);
    assert_eq!(store.get(b"k").await.unwrap(), None);
    let first = store.increment(b"k", window).await.unwrap();
    assert_eq!(first.count, 1);
    assert!(first.resets_in <= window && first.resets_in > Duration::from_secs(20));
    // A longer window later does not extend it.
    let second = store
        .increment(b"k", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(second.count, 2);
    assert!(second.resets_in <= window);
    assert_eq!(store.get(b"k").await.unwrap().map(|c| c.count), Some(2));
    assert!(store.set_if_absent(b"m", window).await.unwrap());
    assert!(!store.set_if_absent(b"m", window).await.unwrap());

    // A short window ends (polled, bounded).
    store
        .increment(b"short", Duration::from_millis(50))
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..200 {
        if store.get(b"short").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "a 50 ms window never ended in Redis");
}

#[tokio::test]
async fn an_unreachable_redis_answers_unavailable_and_start_up_does_not_fail() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let store = RedisStore::connect(&url, RedisOptions::default())
        .await
        .unwrap();
    let err = store.get(b"k").await.unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
    assert!(!format!("{store:?}").contains("hunter2"));
    // Paused after the failure: the next answer comes at once, also unavailable.
    assert!(store.increment(b"k", Duration::from_secs(1)).await.is_err());
}
