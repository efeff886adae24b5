//! Mutual TLS with certificate-bound access tokens (RFC 8705): tokio-rustls terminates TLS,
//! asks every client for a certificate, and puts it in each request's extensions as a
//! `mtls::ClientCertificate`; the layer of `EnvConfig` (JWT or introspection mode) accepts a
//! token bound to a certificate (`cnf.x5t#S256`) only over a connection with that certificate.
//!
//! ```sh
//! MCP_AUTH_ISSUER_URL=https://auth.example.com \
//! MCP_AUTH_RESOURCE_URL=https://127.0.0.1:8443/mcp MCP_AUTH_LISTEN=127.0.0.1:8443 \
//!   cargo run --example mtls
//! ```
//!
//! With `MTLS_CERT` and `MTLS_KEY` (the server's certificate chain and key, PEM) and
//! `MTLS_CLIENT_CA` (the CA that issues client certificates, PEM), it uses them. Without, it
//! makes a throwaway CA, a server certificate for `127.0.0.1` and `localhost` and a client
//! certificate, writes the CA and the client's certificate and key to a temporary directory
//! and prints a `curl` line and the client certificate's `x5t#S256` for the authorization
//! server to bind tokens to. A client without a certificate may still connect: unbound tokens
//! (and the metadata document) need none.

use std::{convert::Infallible, error::Error as StdError, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use mcp_server_auth::{AuthInfo, config::EnvConfig, mtls::ClientCertificate};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject as _},
        server::WebPkiClientVerifier,
    },
};
use tower::{Layer, Service, ServiceExt as _, service_fn};

/// The protected service: answers the caller's subject.
pub async fn hello(
    req: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let who = AuthInfo::from_extensions(req.extensions()).map_or("nobody", AuthInfo::subject);
    Ok(http::Response::new(Full::new(Bytes::from(format!(
        "hello {who}\n"
    )))))
}

/// A certificate authority made at run time: its certificate, and what signs with its key.
pub struct Ca {
    /// The CA certificate (DER).
    pub cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key.
pub struct Leaf {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    /// The private key (PKCS #8 DER).
    pub key: PrivatePkcs8KeyDer<'static>,
    /// The certificate then the key, PEM (what `reqwest::Identity::from_pem` and curl read).
    pub pem: String,
}

impl Ca {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses), named `cn`, signed by this CA.
    pub fn issue(&self, cn: &str, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            pem: format!("{}{}", cert.pem(), key.serialize_pem()),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

/// A TLS configuration that presents `chain` and asks clients for a certificate issued by
/// `client_ca` (one without a certificate may connect too; one with another is refused).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>, Box<dyn StdError>> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in client_ca {
        roots.add(ca)?;
    }
    let clients = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `service` on `listener`, over TLS when `tls` is given: each request carries the peer
/// address and, over TLS, the client's certificate ([`ClientCertificate`]), if it sent one.
pub async fn serve<S, B>(listener: TcpListener, tls: Option<Arc<ServerConfig>>, service: S)
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return connection(TokioIo::new(tcp), peer, None, service).await;
            };
            let Ok(stream) = acceptor.accept(tcp).await else {
                return; // the handshake failed: a certificate from another CA, say
            };
            // The leaf comes first (RFC 8446 §4.4.2); its thumbprint is computed once here.
            let cert = (stream.get_ref().1.peer_certificates())
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertificate::from_der(leaf.as_ref()));
            connection(TokioIo::new(stream), peer, cert, service).await;
        });
    }
}

/// One connection, HTTP/1.1 or HTTP/2, each request given `peer` and `cert`.
async fn connection<I, S, B>(
    io: TokioIo<I>,
    peer: SocketAddr,
    cert: Option<ClientCertificate>,
    service: S,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let service = service.map_request(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(peer);
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        req
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, TowerToHyperService::new(service))
        .await;
}

/// The server's TLS configuration: from `MTLS_CERT`, `MTLS_KEY` and `MTLS_CLIENT_CA`, or
/// throwaway certificates written to a temporary directory.
fn tls_from_env() -> Result<Arc<ServerConfig>, Box<dyn StdError>> {
    let var = |name: &str| std::env::var(name).ok();
    if let (Some(cert), Some(key), Some(ca)) =
        (var("MTLS_CERT"), var("MTLS_KEY"), var("MTLS_CLIENT_CA"))
    {
        let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(key)?;
        let ca = CertificateDer::pem_file_iter(ca)?.collect::<Result<_, _>>()?;
        return server_config(chain, key, ca);
    }
    let ca = Ca::new("mcp-server-auth example CA");
    let server = ca.issue("mcp server", &["127.0.0.1", "localhost"]);
    let client = ca.issue("mcp client", &["client.example"]);
    let dir = std::env::temp_dir().join(format!("mcp-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca_pem = dir.join("ca.pem");
    let client_pem = dir.join("client.pem");
    let pem = |der: &CertificateDer<'_>| pem_of(der);
    std::fs::write(&ca_pem, pem(&ca.cert))?;
    std::fs::write(&client_pem, &client.pem)?;
    let thumbprint = ClientCertificate::from_der(client.cert.as_ref())
        .thumbprint()
        .to_owned();
    println!(
        "client certificate and key: {} (cnf.x5t#S256 = {thumbprint})",
        client_pem.display()
    );
    println!(
        "curl --cacert {} --cert {} https://127.0.0.1:…/mcp -H 'Authorization: Bearer …'",
        ca_pem.display(),
        client_pem.display()
    );
    server_config(vec![server.cert], server.key.into(), vec![ca.cert])
}

/// `der` as a PEM `CERTIFICATE` block.
fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    let b64 = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[allow(dead_code)] // included by tests/mtls.rs, which has its own main
#[tokio::main]
async fn main() {
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    };
    let config = EnvConfig::from_env().unwrap_or_else(|e| fail(&e));
    if !config.has_credentials() {
        fail(&"set MCP_AUTH_ISSUER_URL (JWT mode) or MCP_AUTH_INTROSPECTION_* (or a static token)");
    }
    let layer = config.layer().await.unwrap_or_else(|e| fail(&e));
    let tls = tls_from_env().unwrap_or_else(|e| fail(&e));
    let listener = TcpListener::bind(config.listen())
        .await
        .unwrap_or_else(|e| fail(&e));
    println!("listening on https://{}", config.listen());
    tokio::select! {
        () = serve(listener, Some(tls), layer.layer(service_fn(hello))) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
