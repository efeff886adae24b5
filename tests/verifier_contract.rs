//! The verifier contract over real sockets: a verifier sees the whole request (method, URI,
//! headers, extensions) besides the parsed `Authorization` credentials, schemes are an open set
//! (`Bearer`, `Basic`, `DPoP`, names of your own), and the `401` challenges with exactly the
//! schemes the configured verifiers declare.

mod common;

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::ConnectInfo, routing::any};
use mcp_server_auth::{
    AuthInfo, AuthLayer, AuthMethod,
    bearer::StaticBearer,
    verifier::{
        AuthRequest, Credentials, Invalid, Rejection, Schemes, Verdict, Verifier, VerifierExt,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use common::{TestServer, challenges, client, raw_request, serve_axum, serve_with};

const TOKEN: &str = "c3RhdGljLXRva2VuLWZvci10ZXN0cw";

async fn whoami(info: AuthInfo) -> String {
    info.subject().to_owned()
}

fn app<V: Verifier + Clone>(verifier: V) -> Router {
    Router::new()
        .route("/mcp", any(whoami))
        .route("/mcp/{*rest}", any(whoami))
        .layer(AuthLayer::new(verifier))
}

/// `Authorization: DPoP …` is DPoP credentials now; a layer that understands only Bearer still
/// answers with exactly its configured challenge, as for any scheme it does not accept.
#[tokio::test]
async fn dpop_credentials_against_a_bearer_only_layer_get_the_bearer_challenge() {
    let tokens = StaticBearer::new([("ci", TOKEN)]).unwrap();
    let server = serve_axum(app(tokens)).await;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\nauthorization: DPoP {TOKEN}\r\n\
         content-length: 0\r\nconnection: close\r\n\r\n",
        server.addr
    );
    let (status, response) = raw_request(server.addr, request.as_bytes()).await;
    assert_eq!(status, 401, "{response}");
    let lines: Vec<&str> = response.split("\r\n").collect();
    let challenges: Vec<&&str> = lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .collect();
    assert_eq!(
        challenges,
        [&"www-authenticate: Bearer realm=\"mcp\""],
        "{response}"
    );
    assert!(
        response.ends_with("\r\n\r\n{\"error\":\"unauthorized\"}"),
        "{response}"
    );
}

/// A proof-of-possession verifier (the shape DPoP, RFC 9449, needs): the token comes as DPoP
/// credentials, and the proof in the `DPoP` header must name this request's method and path.
#[derive(Clone)]
struct ProofOfPossession;

impl Verifier for ProofOfPossession {
    fn schemes(&self) -> Schemes {
        Schemes::DPOP
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let Credentials::DPoP(token) = request.credentials() else {
            return Verdict::Ready(Err(Rejection::NoCredentials));
        };
        if *token != TOKEN {
            return Verdict::Ready(Err(Rejection::Invalid(Invalid::UnknownToken)));
        }
        let expected = format!("{} {}", request.method(), request.uri().path());
        let proof = request.headers().get("dpop").and_then(|v| v.to_str().ok());
        Verdict::Ready(if proof == Some(expected.as_str()) {
            Ok(AuthInfo::builder("holder", AuthMethod::Custom("pop")).build())
        } else {
            Err(Rejection::Invalid(Invalid::Custom(
                "the proof is not for this request",
            )))
        })
    }
}

#[tokio::test]
async fn a_verifier_reads_the_method_the_uri_and_a_header_other_than_authorization() {
    let server = serve_axum(app(ProofOfPossession)).await;
    let http = client();
    let send = |method: reqwest::Method, path: &str, proof: Option<&str>| {
        let mut req = http
            .request(method, server.url(path))
            .header("authorization", format!("DPoP {TOKEN}"));
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        req.send()
    };
    let res = send(reqwest::Method::POST, "/mcp", Some("POST /mcp"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "holder");
    let res = send(reqwest::Method::GET, "/mcp/stream", Some("GET /mcp/stream"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A proof for another method, another path, or none: the DPoP challenge says why.
    for (method, path, proof) in [
        (reqwest::Method::GET, "/mcp", Some("POST /mcp")),
        (reqwest::Method::POST, "/mcp/other", Some("POST /mcp")),
        (reqwest::Method::POST, "/mcp", None),
    ] {
        let res = send(method, path, proof).await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(
            challenges(&res),
            ["DPoP realm=\"mcp\", error=\"invalid_token\""]
        );
    }
    // Bearer is not declared: a bearer token is not credentials here.
    let res = http
        .post(server.url("/mcp"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(challenges(&res), ["DPoP realm=\"mcp\""]);
}

/// What the server knows of the connection, put in the extensions before the auth layer runs (as
/// a TLS acceptor puts the peer certificate there, for certificate-bound tokens, RFC 8705).
/// Here: the peer address from axum's `ConnectInfo`, and a token bound to the peer's port.
#[derive(Clone)]
struct BoundToPeer;

impl Verifier for BoundToPeer {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let Credentials::Bearer(token) = request.credentials() else {
            return Verdict::Ready(Err(Rejection::NoCredentials));
        };
        let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return Verdict::Ready(Err(Rejection::Invalid(Invalid::Custom("no peer"))));
        };
        Verdict::Ready(if *token == format!("port-{}", peer.port()) {
            Ok(AuthInfo::builder(peer.to_string(), AuthMethod::Custom("peer")).build())
        } else {
            Err(Rejection::Invalid(Invalid::Custom("bound to another peer")))
        })
    }
}

/// Sends one request on a new connection with a token made from the connection's own port (or
/// another one), and returns the status.
async fn bound_call(server: &TestServer, other_port: bool) -> u16 {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let port = stream.local_addr().unwrap().port();
    let port = if other_port { port ^ 1 } else { port };
    let request = format!(
        "GET /mcp HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer port-{port}\r\n\
         connection: close\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_verifier_reads_what_the_server_put_in_the_request_extensions() {
    let router = app(BoundToPeer);
    let server = serve_with(|listener| async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    })
    .await;
    for _ in 0..3 {
        assert_eq!(bound_call(&server, false).await, 200);
        assert_eq!(bound_call(&server, true).await, 401);
    }
}

/// An API key in a scheme of the user's own: it reaches its verifier as `Credentials::Other`,
/// and the `401` names it after Bearer.
#[derive(Clone)]
struct ApiKey;

impl Verifier for ApiKey {
    fn schemes(&self) -> Schemes {
        Schemes::custom("ApiKey")
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        Verdict::Ready(match request.credentials() {
            Credentials::Other { scheme, value } if scheme.eq_ignore_ascii_case("apikey") => {
                if *value == "key-0123456789" {
                    Ok(AuthInfo::builder("api-client", AuthMethod::Custom("apikey")).build())
                } else {
                    Err(Rejection::Invalid(Invalid::UnknownToken))
                }
            }
            _ => Err(Rejection::NoCredentials),
        })
    }
}

#[tokio::test]
async fn a_scheme_of_your_own_reaches_its_verifier_and_is_challenged() {
    let tokens = StaticBearer::new([("ci", TOKEN)]).unwrap();
    let server = serve_axum(app(tokens.or(ApiKey))).await;
    let http = client();
    let call = |authorization: Option<&str>| {
        let mut req = http.post(server.url("/mcp"));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send()
    };
    for (authorization, subject) in [
        (format!("Bearer {TOKEN}"), "ci"),
        ("ApiKey key-0123456789".to_owned(), "api-client"),
        ("apikey key-0123456789".to_owned(), "api-client"),
    ] {
        let res = call(Some(&authorization)).await.unwrap();
        assert_eq!(res.status(), 200, "{authorization}");
        assert_eq!(res.text().await.unwrap(), subject);
    }
    let both = ["Bearer realm=\"mcp\"", "ApiKey realm=\"mcp\""];
    for authorization in [None, Some("ApiKey wrong"), Some("Other x")] {
        let res = call(authorization).await.unwrap();
        assert_eq!(res.status(), 401, "{authorization:?}");
        assert_eq!(challenges(&res), both, "{authorization:?}");
    }
    assert!(Schemes::custom("apikey").has_custom("APIKEY"));
    assert_eq!(Schemes::custom("bearer"), Schemes::BEARER);
    assert_eq!(Schemes::custom("not a token"), Schemes::NONE);
}
