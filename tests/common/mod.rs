//! Shared helpers for the integration tests: real servers on 127.0.0.1, a real HTTP client.
#![allow(dead_code)]

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};

/// A server running on a free loopback port; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: JoinHandle<()>,
}

impl TestServer {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Binds 127.0.0.1:0 and serves an axum router on it.
pub async fn serve_axum(app: axum::Router) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TestServer { addr, handle }
}

/// Binds 127.0.0.1:0 and serves an axum router on it with the peer address of each request in
/// its extensions (`ConnectInfo<SocketAddr>`), as a server that throttles by client must.
pub async fn serve_axum_with_peers(app: axum::Router) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.unwrap();
    });
    TestServer { addr, handle }
}

/// An HTTP client like [`client`] whose connections come from `ip` (a loopback address such as
/// 127.0.0.2: every 127.x.y.z reaches a server on 127.0.0.1).
pub fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// Serves an axum router on a listener bound earlier (when the app must know its own URL).
pub fn serve_axum_on(listener: std::net::TcpListener, app: axum::Router) -> TestServer {
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TestServer { addr, handle }
}

/// Binds 127.0.0.1:0 and runs `serve(listener)` in a task.
pub async fn serve_with<F, Fut>(serve: F) -> TestServer
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(serve(listener));
    TestServer { addr, handle }
}

/// An HTTP client with a timeout, so that no test can hang.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

/// All values of `WWW-Authenticate`, in order.
pub fn challenges(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Sends raw bytes as one HTTP/1.1 request and returns the status line and the raw response
/// head, for requests no well-behaved client would send (bytes that are not UTF-8, ...).
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
