//! Refusals and HTTP/1.1 connection reuse, over real TCP to an axum 0.8 server on 127.0.0.1.
//!
//! Each layer refuses without reading the request's body. When that body has not fully arrived
//! by then, the server cannot keep the connection, and its refusal must say so
//! (`Connection: close`): a client that sends its next request on a connection the server then
//! closes gets no answer at all. That is what the Python MCP SDK met: `POST` without a token →
//! `401`, then its metadata request on the same connection → "Server disconnected".
//!
//! Here a raw client sends a request's head, reads the refusal, and only then sends the body.
//! Every refusal of a request with a body must say `Connection: close`, and the server must then
//! close. A refusal of a request without a body keeps the connection: the next request on it is
//! answered.

mod common;

use std::time::Duration;

use axum::{Router, routing::post};
use common::{TestServer, serve_axum};
use mcp_server_auth::{
    AuthInfo, AuthLayer, ProtectedResourceMetadata, ResourceUrl, ScopeRequirement, ScopeSet,
    bearer::StaticBearer, mcp::OperationScopes, origin::OriginLayer,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const READER: &str = "reader-token-0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(10);
const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note","arguments":{"text":"hello"}}}"#;

async fn whoami(who: AuthInfo) -> String {
    who.subject().to_owned()
}

/// `/mcp` (per-tool scopes, body limit 64 bytes) and `/admin` (requires `mcp:admin`), behind the
/// auth layer (with its metadata document), behind the Origin check.
async fn server() -> TestServer {
    let tokens = StaticBearer::builder()
        .token_with_scopes("reader", READER, ScopeSet::parse("mcp:read").unwrap())
        .build()
        .unwrap();
    let metadata =
        ProtectedResourceMetadata::builder(ResourceUrl::parse("http://127.0.0.1/mcp").unwrap())
            .authorization_server("https://auth.example.com")
            .build()
            .unwrap();
    let auth = AuthLayer::builder(tokens)
        .metadata(metadata)
        .build()
        .unwrap();
    let mcp = Router::new().route("/mcp", post(whoami)).layer(
        auth.mcp_scopes(OperationScopes::parse("write_note=mcp:write").unwrap())
            .max_body_bytes(64),
    );
    let admin = Router::new()
        .route("/admin", post(whoami))
        .layer(auth.require_scopes(ScopeRequirement::all_of(["mcp:admin"]).unwrap()));
    let app = mcp.merge(admin).layer(auth).layer(OriginLayer::localhost());
    serve_axum(app).await
}

/// One response, read from a connection that may carry more.
struct Reply {
    status: u16,
    head: String,
}

impl Reply {
    fn closes(&self) -> bool {
        self.head
            .lines()
            .any(|l| l.to_ascii_lowercase().replace(' ', "") == "connection:close")
    }
}

/// Reads one response (head, then `Content-Length` bytes of body) from `stream`.
async fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Reply> {
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + length;
                while buf.len() < total {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let status = head.split_whitespace().nth(1)?.parse().ok()?;
                buf.drain(..total);
                return Some(Reply { status, head });
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .expect("no response within 10 s")
}

/// Sends `request` on `stream` and reads its response; `what` names it in a failure.
async fn exchange(stream: &mut TcpStream, buf: &mut Vec<u8>, request: &str, what: &str) -> Reply {
    stream.write_all(request.as_bytes()).await.unwrap();
    read_reply(stream, buf)
        .await
        .unwrap_or_else(|| panic!("{what}: no response"))
}

/// Whether the server closes `stream` (EOF or reset) within 10 s.
async fn server_closes(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 64];
    matches!(
        tokio::time::timeout(LIMIT, stream.read(&mut chunk)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn head(path: &str, fields: &[&str], length: usize) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for field in fields {
        head.push_str(field);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    head
}

#[tokio::test]
async fn a_refusal_that_leaves_the_body_unread_closes_the_connection() {
    let server = server().await;
    let bearer = format!("Authorization: Bearer {READER}");
    let modern = [
        bearer.as_str(),
        "Mcp-Method: tools/call",
        "Mcp-Name: write_note",
        "MCP-Protocol-Version: 2026-07-28",
    ];
    let cases: [(&str, &str, &[&str], u16); 8] = [
        ("no credentials", "/mcp", &[], 401),
        (
            "unknown token",
            "/mcp",
            &["Authorization: Bearer unknown-token-0123456789"],
            401,
        ),
        (
            "malformed credentials",
            "/mcp",
            &["Authorization: Bearer a b"],
            400,
        ),
        (
            "POST to the metadata document",
            "/.well-known/oauth-protected-resource/mcp",
            &[],
            405,
        ),
        (
            "Origin not allowed",
            "/mcp",
            &["Origin: https://evil.example"],
            403,
        ),
        ("require_scopes", "/admin", &[bearer.as_str()], 403),
        // Trusted Mcp-* headers: refused before the body is read.
        ("mcp_scopes, by its headers", "/mcp", &modern, 403),
        // Larger than the layer's body limit: refused before the body is read.
        (
            "mcp_scopes, body too large",
            "/mcp",
            &[bearer.as_str(), "MCP-Protocol-Version: 2025-11-25"],
            413,
        ),
    ];
    for (name, path, fields, status) in cases {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let mut buf = Vec::new();
        // The head alone: the body is not there when the layer refuses.
        let request = head(path, fields, BODY.len());
        let reply = exchange(&mut stream, &mut buf, &request, name).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.head);
        assert!(
            reply.closes(),
            "{name}: the body is unread, so the refusal must say `Connection: close`:\n{}",
            reply.head
        );
        // The body comes late; whatever follows it, the server closes as it said.
        let _ = stream.write_all(BODY.as_bytes()).await;
        let _ = stream.write_all(head(path, fields, 0).as_bytes()).await;
        assert!(server_closes(&mut stream).await, "{name}: still open");
    }
}

#[tokio::test]
async fn a_refusal_of_a_request_without_a_body_keeps_the_connection() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = Vec::new();
    let requests = [
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_owned(),
        head("/mcp", &[], 0),
        head("/mcp", &["Origin: https://evil.example"], 0),
        "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            .to_owned(),
        // The last one has a body, sent with its head: refused, and the connection then closes.
        format!("{}{BODY}", head("/mcp", &[], BODY.len())),
    ];
    let expected = [401, 401, 403, 200, 401];
    // All on one connection, one after the other.
    for (i, (request, status)) in requests.iter().zip(expected).enumerate() {
        let what = format!("request {i} on the reused connection");
        let reply = exchange(&mut stream, &mut buf, request, &what).await;
        assert_eq!(reply.status, status, "request {i}: {}", reply.head);
        assert_eq!(
            reply.closes(),
            i == requests.len() - 1,
            "request {i}: {}",
            reply.head
        );
    }
    assert!(server_closes(&mut stream).await);
}
