//! A password in a URL (`https://user:password@host`): in the issuer or JWKS URL configured, or
//! in a URL an authorization server sends back (a redirect's target, a metadata document's
//! `issuer` or `jwks_uri`). It never reaches an error's `Display` or `Debug`, a log line, or the
//! `Debug` of a configuration type; configured ones are refused.

use std::net::TcpListener as StdListener;

use axum::{
    extract::State,
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use mcp_server_auth::jwt::{RemoteJwksOptions, RemoteKeysError};

use super::*;

/// The password put in URLs.
const URL_PASSWORD: &str = "s3cr3tPW-in-a-URL-Tq9Lx4";

fn url_secrets() -> Secrets {
    let mut s = all_secrets();
    s.add("password in a URL", URL_PASSWORD);
    s
}

/// `scheme://admin:<password>@rest`.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://admin:{URL_PASSWORD}@{rest}")
}

/// An authorization server on 127.0.0.1 that fails in the way the first path segment of the
/// issuer (or JWKS URL) names: `500`, `garbage`, `mismatch` (the document names an issuer with
/// a password), `userinfo-jwks` (its `jwks_uri` has a password), `redirect` (to a URL with a
/// password).
async fn failing_server(State(base): State<String>, uri: Uri) -> Response {
    let path = uri.path();
    let mode = path
        .split('/')
        .find(|s| ["500", "garbage", "mismatch", "userinfo-jwks", "redirect"].contains(s))
        .unwrap_or("");
    let issuer = format!("{base}/{mode}");
    match mode {
        "500" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "garbage" => "{\"issuer\": not json".into_response(),
        "mismatch" => axum::Json(json!({
            "issuer": with_password(&issuer),
            "jwks_uri": format!("{base}/jwks"),
        }))
        .into_response(),
        "userinfo-jwks" => axum::Json(json!({
            "issuer": issuer,
            "jwks_uri": with_password(&format!("{base}/jwks")),
        }))
        .into_response(),
        "redirect" => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                with_password(&format!("{base}/elsewhere")),
            )],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve_failing() -> (TestServer, String) {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .fallback(failing_server)
        .with_state(base.clone());
    (common::serve_axum_on(listener, app), base)
}

/// A loopback URL nothing listens on.
fn refused_url() -> String {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    format!("{base}/jwks")
}

fn options() -> RemoteJwksOptions {
    RemoteJwksOptions {
        timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    }
}

/// Each configuration with a password in the issuer or JWKS URL is refused, by `from_vars` or
/// at the latest by `verifier()` / `layer()`, and nothing names the password.
#[test]
fn configured_issuer_and_jwks_urls_with_a_password_are_refused_unechoed() {
    let secrets = url_secrets();
    let issuer = with_password(ISSUER);
    let jwks = with_password(&format!("{ISSUER}/jwks"));
    let cases: [Vec<(&str, &str)>; 4] = [
        vec![("MCP_AUTH_ISSUER_URL", &issuer)],
        vec![
            ("MCP_AUTH_ISSUER_URL", ISSUER),
            ("MCP_AUTH_JWKS_URL", &jwks),
        ],
        vec![
            ("MCP_AUTH_ISSUER_URL", &issuer),
            ("MCP_AUTH_JWKS_URL", "https://auth.example.com/jwks"),
            ("MCP_AUTH_AUTHORIZATION_SERVERS", ISSUER),
        ],
        vec![
            ("MCP_AUTH_ISSUER_URL", &issuer),
            ("MCP_AUTH_JWKS_URL", &jwks),
        ],
    ];
    let mut refused = 0;
    let logs = with_logs(|_| async {
        for vars in &cases {
            let label = format!("{:?}", vars.iter().map(|(k, _)| k).collect::<Vec<_>>());
            let config = match EnvConfig::from_vars(vars.iter().copied()) {
                Err(e) => {
                    secrets.assert_absent(&label, &format!("{e}\n{e:?}"));
                    refused += 1;
                    continue;
                }
                Ok(config) => config,
            };
            secrets.assert_absent(
                &format!("Debug of the config for {label}"),
                &format!("{config:?}"),
            );
            let verifier = config.verifier().await.map(|_| ());
            let layer = config.layer().await.map(|_| ());
            if let (Err(v), Err(l)) = (&verifier, &layer) {
                refused += 1;
                secrets.assert_absent(&label, &format!("{v}\n{v:?}\n{l}\n{l:?}"));
            } else {
                panic!("{label}: accepted ({verifier:?}, {layer:?})");
            }
        }
    });
    assert_eq!(refused, cases.len());
    secrets.assert_absent("the logs", &logs);
}

/// Every way fetching keys or metadata can fail, with a password in the URL configured or in
/// one the server sends: the errors and the log lines name no password.
#[test]
fn remote_key_errors_and_logs_name_no_url_password() {
    let secrets = url_secrets();
    let secrets = &secrets;
    let logs = with_logs(|capture| async move {
        let mut checked = Vec::new();
        let (_server, base) = serve_failing().await;
        let mut check = |label: String, e: RemoteKeysError| {
            let text = format!("{e}\n{e:?}");
            secrets.assert_absent(&label, &text);
            checked.push(label);
        };
        // Configured with a password: refused before any request.
        let e = Issuer::discover(&with_password(&format!("{base}/t")), options())
            .await
            .unwrap_err();
        check("discover(issuer with a password)".into(), e);
        let jwks = with_password(&format!("{base}/jwks"));
        let e = Issuer::with_jwks_uri(ISSUER, &jwks, options()).unwrap_err();
        secrets.assert_absent(
            "with_jwks_uri(JWKS URL with a password)",
            &format!("{e}\n{e:?}"),
        );
        let e = Issuer::with_jwks_uri_eager(ISSUER, &jwks, options())
            .await
            .unwrap_err();
        check("with_jwks_uri_eager(JWKS URL with a password)".into(), e);
        // Each failure of the server, for discovery and for the keys.
        for mode in ["500", "garbage", "mismatch", "userinfo-jwks", "redirect"] {
            let issuer = format!("{base}/{mode}");
            let e = Issuer::discover(&issuer, options()).await.unwrap_err();
            check(format!("discover({mode})"), e);
            let e = Issuer::with_jwks_uri_eager(
                with_password(ISSUER),
                &format!("{issuer}/jwks"),
                options(),
            )
            .await
            .unwrap_err();
            check(format!("with_jwks_uri_eager({mode})"), e);
        }
        let e = Issuer::with_jwks_uri_eager(ISSUER, &refused_url(), options())
            .await
            .unwrap_err();
        check("with_jwks_uri_eager(connection refused)".into(), e);
        // A lazy issuer: the first token fetches, fails, and logs why.
        let mark = capture.len();
        let issuer =
            Issuer::with_jwks_uri(ISSUER, &format!("{base}/redirect/jwks"), options()).unwrap();
        let verifier = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
            .issuer(issuer)
            .build()
            .unwrap();
        let token = rs256("rsa-1", &claims(RESOURCE, ISSUER, now() + 600, "mcp:read"));
        assert!(verifier.verify_token(&token).await.is_err());
        let lazy = capture.since(mark);
        assert!(lazy.contains("JWKS fetch failed"), "{lazy}");
        assert_eq!(checked.len(), 13, "{checked:?}");
    });
    // The discovery and fetch failures were logged, with the URLs, and no password.
    assert!(
        logs.contains("redirect") && logs.contains("JWKS fetch failed"),
        "{logs}"
    );
    secrets.assert_absent("the logs", &logs);
}

/// `Debug` of an issuer, a verifier, their builders and the configuration name no password of
/// an issuer, JWKS or authorization server URL.
#[test]
fn debug_names_no_url_password() {
    let secrets = url_secrets();
    let issuer = with_password(ISSUER);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let remote =
        Issuer::with_jwks_uri(issuer.clone(), "https://auth.example.com/jwks", options()).unwrap();
    let local = Issuer::with_keys(issuer.clone(), jwt_keys());
    let builder = JwtVerifier::builder(ResourceUrl::parse(RESOURCE).unwrap())
        .issuer(remote.clone())
        .issuer(local.clone())
        .audience(with_password("https://alias.example.com/mcp"));
    let debug_builder = format!("{builder:?}");
    let verifier = builder.build().unwrap();
    let config = EnvConfig::from_vars([
        ("MCP_AUTH_ISSUER_URL", ISSUER),
        (
            "MCP_AUTH_AUTHORIZATION_SERVERS",
            &with_password("https://as.example.com"),
        ),
        (
            "MCP_AUTH_AUDIENCE",
            &with_password("https://alias.example.com/mcp"),
        ),
    ])
    .unwrap();
    for (label, debug) in [
        ("Issuer (remote keys)", format!("{remote:?}")),
        ("Issuer (keys given)", format!("{local:?}")),
        ("JwtVerifierBuilder", debug_builder),
        ("JwtVerifier", format!("{verifier:?}")),
        ("EnvConfig", format!("{config:?}")),
    ] {
        assert!(debug.contains("…@"), "{label}: {debug}");
        secrets.assert_absent(&format!("Debug of {label}"), &debug);
    }
    // The issuer itself is kept as configured: tokens' `iss` is compared with it.
    assert_eq!(remote.issuer(), issuer);
}
