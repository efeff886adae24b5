//! Protected Resource Metadata (RFC 9728): the document that tells clients which authorization
//! server issues tokens for this resource, and the endpoint that serves it.
//!
//! The document is served at the path-inserted well-known URL of the configured
//! [`ResourceUrl`] (`https://h/mcp` → `/.well-known/oauth-protected-resource/mcp`), with or
//! without a trailing slash and whatever the query string, and optionally also at the root
//! (`/.well-known/oauth-protected-resource`, whose `resource` is then the origin, RFC 9728
//! §3.3). It answers `GET` and `HEAD` with `Cache-Control: public, max-age=…`, CORS preflights
//! with `Access-Control-Allow-Origin: *` (allowing `mcp-protocol-version`), and any other method
//! with `405` and `Allow`; its `404` and `405` answers carry `Cache-Control: no-store`, as every
//! refusal of this crate does. [`AuthLayer`](crate::AuthLayer) serves it itself, ahead of
//! authentication; [`MetadataService`] serves it alone.
//!
//! ```
//! use mcp_server_auth::{ProtectedResourceMetadata, ResourceUrl};
//!
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
//! let doc = ProtectedResourceMetadata::builder(resource)
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["mcp:read"])
//!     .resource_name("Example MCP server")
//!     .build()
//!     .unwrap();
//! assert_eq!(
//!     serde_json::to_string(&doc).unwrap(),
//!     r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"],"resource_name":"Example MCP server"}"#
//! );
//! ```

use std::{
    convert::Infallible,
    future::{Ready, ready},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode,
    header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
    },
};
use serde::{Deserialize, Serialize};

use crate::{
    refusal::ResponseBody,
    resource::{ResourceUrl, ResourceUrlError, WELL_KNOWN},
    scope::{ScopeError, ScopeSet},
};

/// How long clients may cache the document by default: one hour.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// What is wrong with a metadata document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// No authorization server was named; MCP requires at least one.
    #[error(
        "the metadata names no authorization server; MCP requires at least one \
         (without one, leave metadata out: static tokens and Basic need none)"
    )]
    NoAuthorizationServer,
    /// A URL-valued field is not a valid absolute https URL.
    #[error("{field}: {source}")]
    Url {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: ResourceUrlError,
    },
    /// An authorization server issuer has a query or a fragment (RFC 8414 §2 forbids both).
    #[error("authorization server {0:?} must have no query or fragment")]
    IssuerQuery(String),
    /// A scope is invalid, or `offline_access` was listed.
    #[error("scopes_supported: {0}")]
    Scope(#[from] ScopeError),
}

/// An RFC 9728 Protected Resource Metadata document. It never serializes `null` or an empty
/// list, always says `bearer_methods_supported: ["header"]`, and cannot list `offline_access`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    resource: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bearer_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resource_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    tls_client_certificate_bound_access_tokens: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dpop_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    dpop_bound_access_tokens_required: bool,
    #[serde(skip)]
    resource_url: Option<ResourceUrl>,
}

impl ProtectedResourceMetadata {
    /// Starts a document for `resource`.
    pub fn builder(resource: ResourceUrl) -> MetadataBuilder {
        MetadataBuilder {
            resource,
            authorization_servers: Vec::new(),
            scopes: Vec::new(),
            jwks_uri: None,
            resource_name: None,
            documentation: None,
            policy: None,
            tos: None,
            certificate_bound: false,
            signing_algs: Vec::new(),
            dpop_algs: Vec::new(),
            dpop_required: false,
        }
    }

    /// `resource`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The resource as a [`ResourceUrl`] (for a built document).
    pub fn resource_url(&self) -> Option<&ResourceUrl> {
        self.resource_url.as_ref()
    }

    /// `authorization_servers`.
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }

    /// `scopes_supported`.
    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes_supported
    }

    /// `bearer_methods_supported`.
    pub fn bearer_methods_supported(&self) -> &[String] {
        &self.bearer_methods_supported
    }

    /// `resource_name`.
    pub fn resource_name(&self) -> Option<&str> {
        self.resource_name.as_deref()
    }

    /// `jwks_uri`.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// The absolute URL of this document (for `resource_metadata`).
    pub fn url(&self) -> Option<String> {
        self.resource_url.as_ref().map(ResourceUrl::metadata_url)
    }

    /// A service that serves this document alone (for example under axum's
    /// `Router::route_service`, when the [`AuthLayer`](crate::AuthLayer) does not wrap the
    /// whole router).
    pub fn into_service(self) -> MetadataService {
        MetadataService {
            endpoint: MetadataEndpoint::new(&self, false, DEFAULT_MAX_AGE),
            doc: self,
            root: false,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Builds a [`ProtectedResourceMetadata`]. Errors are reported by [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct MetadataBuilder {
    resource: ResourceUrl,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
    jwks_uri: Option<String>,
    resource_name: Option<String>,
    documentation: Option<String>,
    policy: Option<String>,
    tos: Option<String>,
    certificate_bound: bool,
    signing_algs: Vec<String>,
    dpop_algs: Vec<String>,
    dpop_required: bool,
}

impl MetadataBuilder {
    /// Adds an authorization server by its issuer identifier (https, no query or fragment).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// `scopes_supported`: the minimal set needed for basic use (clients with no other hint
    /// request all of it). `offline_access` is refused.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// `resource_name`, a human-readable name.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `jwks_uri` of the resource's own keys (rarely needed).
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// `resource_documentation`.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.documentation = Some(url.into());
        self
    }

    /// `resource_policy_uri`.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.policy = Some(url.into());
        self
    }

    /// `resource_tos_uri`.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.tos = Some(url.into());
        self
    }

    /// `resource_signing_alg_values_supported`.
    pub fn resource_signing_alg_values_supported<I, S>(mut self, algs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.signing_algs.extend(algs.into_iter().map(Into::into));
        self
    }

    /// `tls_client_certificate_bound_access_tokens` (RFC 9728 §2, after RFC 8705 §3.3): whether
    /// certificate-bound access tokens are supported (a `mtls::CertificateBound` verifier). Left
    /// out when `false`.
    pub fn tls_client_certificate_bound_access_tokens(mut self, yes: bool) -> Self {
        self.certificate_bound = yes;
        self
    }

    /// `dpop_signing_alg_values_supported` (RFC 9449 §5.2 for resources, RFC 9728 §2): the DPoP
    /// proof algorithms accepted (`DpopOptions::algorithm_names` gives them for a configured
    /// `dpop::Dpop` verifier).
    pub fn dpop_signing_alg_values_supported<I, S>(mut self, algs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dpop_algs.extend(algs.into_iter().map(Into::into));
        self
    }

    /// `dpop_bound_access_tokens_required` (RFC 9728 §2): whether every access token must be
    /// DPoP-bound (the `required` mode of the `dpop` module). Left out when `false`.
    pub fn dpop_bound_access_tokens_required(mut self, yes: bool) -> Self {
        self.dpop_required = yes;
        self
    }

    /// Checks every field and builds the document.
    pub fn build(self) -> Result<ProtectedResourceMetadata, MetadataError> {
        if self.authorization_servers.is_empty() {
            return Err(MetadataError::NoAuthorizationServer);
        }
        let url = |field, v: Option<String>| -> Result<Option<String>, MetadataError> {
            v.map(|v| {
                ResourceUrl::parse(&v)
                    .map(|_| v)
                    .map_err(|source| MetadataError::Url { field, source })
            })
            .transpose()
        };
        let mut servers = Vec::with_capacity(self.authorization_servers.len());
        for s in self.authorization_servers {
            let s = url("authorization_servers", Some(s))?.unwrap_or_default();
            if s.contains('?') {
                return Err(MetadataError::IssuerQuery(s));
            }
            if !servers.contains(&s) {
                servers.push(s);
            }
        }
        let scopes = ScopeSet::try_from_iter(&self.scopes)?;
        scopes.refuse_offline_access()?;
        // Keep the order the user gave, without duplicates.
        let mut scopes_supported: Vec<String> = Vec::new();
        for s in self.scopes {
            if !scopes_supported.contains(&s) {
                scopes_supported.push(s);
            }
        }
        Ok(ProtectedResourceMetadata {
            resource: self.resource.as_str().to_owned(),
            authorization_servers: servers,
            jwks_uri: url("jwks_uri", self.jwks_uri)?,
            scopes_supported,
            bearer_methods_supported: vec!["header".to_owned()],
            resource_signing_alg_values_supported: self.signing_algs,
            resource_name: self.resource_name.filter(|n| !n.is_empty()),
            resource_documentation: url("resource_documentation", self.documentation)?,
            resource_policy_uri: url("resource_policy_uri", self.policy)?,
            resource_tos_uri: url("resource_tos_uri", self.tos)?,
            tls_client_certificate_bound_access_tokens: self.certificate_bound,
            dpop_signing_alg_values_supported: self.dpop_algs,
            dpop_bound_access_tokens_required: self.dpop_required,
            resource_url: Some(self.resource),
        })
    }
}

const ALLOWED: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
/// Every error answer is `no-store`, like every refusal of this crate.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const PREFLIGHT_HEADERS: HeaderValue =
    HeaderValue::from_static("mcp-protocol-version, content-type, accept");

/// The prebuilt responses of the metadata endpoint.
#[derive(Debug, Clone)]
pub(crate) struct MetadataEndpoint {
    /// The path, without query and without a trailing slash.
    path: String,
    doc: Bytes,
    root: Option<Bytes>,
    cache_control: HeaderValue,
}

impl MetadataEndpoint {
    pub(crate) fn new(
        doc: &ProtectedResourceMetadata,
        serve_root: bool,
        max_age: Duration,
    ) -> Self {
        let resource = doc
            .resource_url
            .clone()
            .or_else(|| ResourceUrl::parse_allowing_plain_http(&doc.resource).ok());
        let path = resource
            .as_ref()
            .map(|r| format!("{WELL_KNOWN}{}", r.path()))
            .unwrap_or_else(|| WELL_KNOWN.to_owned());
        let path = path.trim_end_matches('/').to_owned();
        let root = resource.filter(|r| serve_root && !r.is_origin()).map(|r| {
            let mut root_doc = doc.clone();
            root_doc.resource = r.root().as_str().to_owned();
            Bytes::from(serde_json::to_vec(&root_doc).expect("metadata serializes"))
        });
        Self {
            path,
            doc: Bytes::from(serde_json::to_vec(doc).expect("metadata serializes")),
            root,
            cache_control: HeaderValue::from_str(&format!("public, max-age={}", max_age.as_secs()))
                .expect("ascii"),
        }
    }

    /// The response for a request to `path`, or `None` if the path is not in the
    /// `/.well-known/oauth-protected-resource` namespace (then it is not ours to answer).
    pub(crate) fn respond(&self, method: &Method, path: &str) -> Option<Response<Bytes>> {
        let rest = path.strip_prefix(WELL_KNOWN)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let trimmed = path.trim_end_matches('/');
        let doc = if trimmed == self.path {
            Some(&self.doc)
        } else if trimmed == WELL_KNOWN {
            self.root.as_ref()
        } else {
            None
        };
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
        let (status, body) = match (doc, method) {
            (None, _) => {
                headers.insert(CACHE_CONTROL, NO_STORE);
                (StatusCode::NOT_FOUND, Bytes::new())
            }
            (Some(doc), &Method::GET | &Method::HEAD) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CACHE_CONTROL, self.cache_control.clone());
                headers.insert(CONTENT_LENGTH, HeaderValue::from(doc.len()));
                let body = if method == Method::GET {
                    doc.clone()
                } else {
                    Bytes::new()
                };
                (StatusCode::OK, body)
            }
            (Some(_), &Method::OPTIONS) => {
                headers.insert(ACCESS_CONTROL_ALLOW_METHODS, ALLOWED);
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, PREFLIGHT_HEADERS);
                headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
                headers.insert(ALLOW, ALLOWED);
                (StatusCode::NO_CONTENT, Bytes::new())
            }
            (Some(_), _) => {
                headers.insert(ALLOW, ALLOWED);
                headers.insert(CACHE_CONTROL, NO_STORE);
                (StatusCode::METHOD_NOT_ALLOWED, Bytes::new())
            }
        };
        let mut res = Response::new(body);
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        Some(res)
    }
}

/// Serves a [`ProtectedResourceMetadata`] document on its own; any path outside
/// `/.well-known/oauth-protected-resource…` gets `404`.
#[derive(Debug, Clone)]
pub struct MetadataService {
    doc: ProtectedResourceMetadata,
    root: bool,
    max_age: Duration,
    endpoint: MetadataEndpoint,
}

impl MetadataService {
    /// Also serves the document at the root well-known URL, with `resource` = the origin.
    pub fn serve_at_root(mut self) -> Self {
        self.root = true;
        self.rebuild()
    }

    /// The `Cache-Control: max-age` of the document (default 1 h).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self.rebuild()
    }

    fn rebuild(mut self) -> Self {
        self.endpoint = MetadataEndpoint::new(&self.doc, self.root, self.max_age);
        self
    }

    /// The path the document is served at (without a trailing slash).
    pub fn path(&self) -> &str {
        &self.endpoint.path
    }
}

impl<B> tower_service::Service<Request<B>> for MetadataService {
    type Response = Response<ResponseBody<Never>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let res = self
            .endpoint
            .respond(req.method(), req.uri().path())
            .unwrap_or_else(|| {
                let mut r = Response::new(Bytes::new());
                *r.status_mut() = StatusCode::NOT_FOUND;
                r.headers_mut().insert(CACHE_CONTROL, NO_STORE);
                r
            });
        ready(Ok(res.map(ResponseBody::full)))
    }
}

impl http_body::Body for Never {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        match *self {}
    }
}

/// A body type with no values, for services whose every body is [`ResponseBody::full`].
#[derive(Debug, Clone, Copy)]
pub enum Never {}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ProtectedResourceMetadata {
        ProtectedResourceMetadata::builder(ResourceUrl::parse("https://h.example/mcp").unwrap())
            .authorization_server("https://as.example")
            .build()
            .unwrap()
    }

    #[test]
    fn refuses_bad_documents() {
        let r = ResourceUrl::parse("https://h/mcp").unwrap();
        assert_eq!(
            ProtectedResourceMetadata::builder(r.clone())
                .build()
                .unwrap_err(),
            MetadataError::NoAuthorizationServer
        );
        let e = ProtectedResourceMetadata::builder(r.clone())
            .authorization_server("https://as")
            .scopes_supported(["offline_access"])
            .build()
            .unwrap_err();
        assert_eq!(e, MetadataError::Scope(ScopeError::OfflineAccess));
        assert!(matches!(
            ProtectedResourceMetadata::builder(r.clone())
                .authorization_server("http://as.example")
                .build(),
            Err(MetadataError::Url { .. })
        ));
        assert!(matches!(
            ProtectedResourceMetadata::builder(r)
                .authorization_server("https://as?x=1")
                .build(),
            Err(MetadataError::IssuerQuery(_))
        ));
    }

    #[test]
    fn never_null() {
        let json = serde_json::to_value(doc()).unwrap();
        let obj = json.as_object().unwrap();
        assert!(
            obj.values()
                .all(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        );
        assert_eq!(
            obj["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
    }

    #[test]
    fn paths() {
        let e = MetadataEndpoint::new(&doc(), true, DEFAULT_MAX_AGE);
        let get = |p: &str| e.respond(&Method::GET, p).map(|r| r.status().as_u16());
        assert_eq!(get("/.well-known/oauth-protected-resource/mcp"), Some(200));
        assert_eq!(get("/.well-known/oauth-protected-resource/mcp/"), Some(200));
        assert_eq!(get("/.well-known/oauth-protected-resource"), Some(200));
        assert_eq!(
            get("/.well-known/oauth-protected-resource/other"),
            Some(404)
        );
        assert_eq!(get("/.well-known/oauth-protected-resourcex"), None);
        assert_eq!(get("/mcp"), None);
        let root = e
            .respond(&Method::GET, "/.well-known/oauth-protected-resource")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(root.body()).unwrap();
        assert_eq!(v["resource"], "https://h.example");
        let post = e
            .respond(&Method::POST, "/.well-known/oauth-protected-resource/mcp")
            .unwrap();
        assert_eq!(post.status(), 405);
        assert_eq!(post.headers()[ALLOW], "GET, HEAD, OPTIONS");
    }
}
