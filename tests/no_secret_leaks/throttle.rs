//! Failed-auth throttling: its `429`s, its log lines (the `debug` of each refusal, the `warn`
//! about a request without a peer address, the `warn` of a Redis store that cannot be reached)
//! and the `Debug` of its layer and store name no token and no Redis password.

use std::time::Duration;

use mcp_server_auth::throttle::ThrottleLayer;

use super::*;

/// The password in the Redis URL.
const REDIS_PASSWORD: &str = "redis-Pa55word-Kz8mWq2Lx";

fn throttle_secrets() -> Secrets {
    let mut s = all_secrets();
    s.add("Redis password", REDIS_PASSWORD);
    s
}

fn throttled_app<St: mcp_server_auth::store::Store>(throttle: ThrottleLayer<St>) -> Router {
    app(AuthLayer::new(static_bearer())).layer(throttle)
}

/// Three wrong tokens at a limit of 2, then the good token: `401`, `401`, `429`, `429`.
async fn guess(c: &mut Check<'_>, server: &TestServer, limited: bool) {
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let good = format!("Bearer {TOKEN_CI}");
    for i in 0..2 {
        let label = format!("wrong token {i}");
        c.expect(
            &label,
            401,
            "refused",
            send(server, "/mcp", &[wrong.as_bytes()], &[], ""),
        )
        .await;
    }
    let (status, marker) = if limited {
        (429, "too many failed authentications")
    } else {
        (401, "refused")
    };
    c.expect(
        "a wrong token past the limit",
        status,
        marker,
        send(server, "/mcp", &[wrong.as_bytes()], &[], ""),
    )
    .await;
    let (status, marker) = if limited {
        (429, "too many failed authentications")
    } else {
        (200, "authenticated")
    };
    c.expect(
        "the good token past the limit",
        status,
        marker,
        send(server, "/mcp", &[good.as_bytes()], &[], ""),
    )
    .await;
}

#[test]
fn throttling_leaks_nothing() {
    let secrets = &throttle_secrets();
    let logs = with_logs(|capture| async move {
        let mut c = Check::new(&capture, secrets);
        let throttle = ThrottleLayer::new(2, Duration::from_secs(60));
        secrets.assert_absent("the Debug of the layer", &format!("{throttle:?}"));
        // Served without peer addresses: the warning, and one shared count.
        let server = serve_axum(throttled_app(throttle)).await;
        guess(&mut c, &server, true).await;
        assert!(c.capture.text().contains("no peer address"));
    });
    assert!(
        logs.contains("429") || logs.contains("too many failed"),
        "{logs}"
    );
    secrets.assert_absent("the logs", &logs);
}

#[cfg(feature = "redis")]
#[test]
fn an_unreachable_redis_leaks_nothing() {
    use mcp_server_auth::store::{RedisOptions, RedisStore};

    let secrets = &throttle_secrets();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0");
    let logs = with_logs(|capture| async move {
        let mut c = Check::new(&capture, secrets);
        let store = RedisStore::connect(&url, RedisOptions::default())
            .await
            .unwrap();
        secrets.assert_absent("the Debug of the store", &format!("{store:?}"));
        let throttle = ThrottleLayer::with_store(store, 2, Duration::from_secs(60));
        secrets.assert_absent("the Debug of the layer", &format!("{throttle:?}"));
        // With peer addresses: the warning about their absence is the other test's, once a process.
        let server = common::serve_axum_with_peers(throttled_app(throttle)).await;
        // Redis is down: nothing is counted, every request is judged on its credentials.
        guess(&mut c, &server, false).await;
        let config = EnvConfig::from_vars([("MCP_AUTH_REDIS_URL", url.as_str())]).unwrap();
        secrets.assert_absent("the Debug of the configuration", &format!("{config:?}"));
    });
    assert!(logs.contains("Redis store unavailable"), "{logs}");
    secrets.assert_absent("the logs", &logs);
}
