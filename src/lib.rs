//! Tower layers that put authentication and authorization in front of any MCP (Model Context
//! Protocol) server that speaks HTTP: axum, hyper, tonic, or rmcp's streamable HTTP service.
//!
//! The data flow, one module per step, in the order a request meets them:
//!
//! | step | module |
//! |---|---|
//! | Origin check (DNS rebinding; outermost, before any credential) | [`origin`] |
//! | failed-authentication throttling (`429` once a client has failed too often; before its credentials are checked) and the store its counts live in (memory, or Redis with the `redis` feature) | [`throttle`], [`store`] |
//! | the auth layer tying the steps below together | [`auth`] |
//! | credentials in (`Authorization`: `Bearer`, `Basic`, `DPoP`, other schemes); a bearer token a verifier accepted before is admitted from its memory without being parsed again | [`credentials`], [`recall`] |
//! | verifier, given a view of the whole request (static bearer, Basic, JWT, an opaque token the authorization server vouches for, an identity-aware proxy's assertion, your own) | [`verifier`], [`bearer`] (with [`reload`], its tokens swapped at run time, from a watched file), [`basic`], [`jwt`], `introspection` (RFC 7662, with the `introspection` feature; their outbound HTTP: `fetch`; their caches: `cache`, keyed digests with TTL, bounds and single flight), [`assertion`] |
//! | DPoP proofs and token binding around a token verifier (RFC 9449; with a crypto backend) | `dpop` |
//! | certificate-bound tokens around a token verifier (RFC 8705 mutual TLS; with a crypto backend) | `mtls` |
//! | identity handed to handlers and tools | [`identity`] (and the `axum`, `rmcp` and `tonic` modules, with their features) |
//! | scope policy: required scopes, hierarchies, per-route and per-MCP-operation scopes | [`scope`], [`mcp`] (and the private `admission`, shared by the scope layers) |
//! | why a request is refused, in one vocabulary | [`rejection`] |
//! | every layer's decision, as one audit event (`tracing`) and as metrics (`metrics` feature) | [`audit`] (and the private `peer`: the client address the throttle and the audit read) |
//! | refusal out (401 / 403 / 400 / 404 / 413 / 503, gRPC statuses; one response future) | [`refusal`] |
//! | MCP sessions bound to the principal that opened them (inside the auth layer) | [`session`] |
//! | Protected Resource Metadata (RFC 9728), served by the auth layer | [`metadata`], [`resource`] |
//! | configuration from `MCP_AUTH_*` environment variables | [`config`] |
//!
//! # Example: protect an axum app serving MCP at `/mcp`
//!
//! ```
//! use axum::{Extension, Router, routing::post};
//! use mcp_server_auth::{AuthLayer, AuthInfo, bearer::StaticBearer};
//!
//! let tokens = StaticBearer::new([("laptop", "c2VjcmV0LXRva2VuLWZvci1sYXB0b3A")]).unwrap();
//! let app: Router = Router::new()
//!     .route("/mcp", post(|Extension(who): Extension<AuthInfo>| async move {
//!         format!("hello {}", who.subject())
//!     }))
//!     .layer(AuthLayer::new(tokens)); // every route and method behind it is protected
//! ```
//!
//! With an authorization server, add the metadata document; the layer serves it at
//! `/.well-known/oauth-protected-resource/mcp` (public) and every challenge points at it:
//!
//! ```
//! # use mcp_server_auth::{AuthLayer, ProtectedResourceMetadata, ResourceUrl, bearer::StaticBearer};
//! # let verifier = StaticBearer::new([("a", "c2VjcmV0LXRva2VuLWZvci1sYXB0b3A")]).unwrap();
//! let resource = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
//! let layer = AuthLayer::builder(verifier)
//!     .metadata(
//!         ProtectedResourceMetadata::builder(resource)
//!             .authorization_server("https://auth.example.com")
//!             .scopes_supported(["mcp:read"])
//!             .build()
//!             .unwrap(),
//!     )
//!     .build()
//!     .unwrap();
//! # let _ = layer;
//! ```
//!
//! # Features
//! - `axum`: [`AuthInfo`] as an axum extractor, and a metadata router.
//! - `rmcp`: reading the [`AuthInfo`] from an rmcp tool (`rmcp` module).
//! - `tonic`: reading the [`AuthInfo`] from a `tonic::Request`.
//! - `remote-jwks` (default): JWT keys fetched from a JWKS URL or found by discovery.
//! - `redis`: the [`store`] in Redis or Valkey (`store::RedisStore`), shared by replicas.
//! - `introspection` (default, with `remote-jwks`): opaque access tokens checked by RFC 7662
//!   token introspection (`introspection` module).
//! - `metrics`: counters and histograms of the decisions, JWKS fetches, token caches and
//!   introspection calls through the `metrics` facade ([`audit::metrics`]).
//! - `audit-log`: `audit::log::AuditLog`, audit lines to a file reopened on `SIGHUP`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admission;
pub mod assertion;
pub mod audit;
pub mod auth;
pub mod basic;
pub mod bearer;
mod cache;
pub mod config;
pub mod credentials;
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
pub mod dpop;
#[cfg(feature = "remote-jwks")]
mod fetch;
pub mod identity;
#[cfg(feature = "introspection")]
pub mod introspection;
pub mod jwt;
pub mod mcp;
pub mod metadata;
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
pub mod mtls;
pub mod origin;
mod peer;
pub mod recall;
pub mod refusal;
pub mod rejection;
pub mod reload;
pub mod resource;
pub mod scope;
mod secret;
pub mod session;
pub mod store;
pub mod throttle;
pub mod verifier;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "rmcp")]
pub mod rmcp;
#[cfg(feature = "tonic")]
pub mod tonic;

pub use auth::{
    AuthLayer, AuthLayerBuilder, AuthService, BuildError, RequireScopes, RequireScopesLayer,
};
pub use identity::{AuthInfo, AuthMethod, PrincipalKey};
pub use metadata::{MetadataService, ProtectedResourceMetadata};
pub use origin::{AllowedOrigins, OriginLayer};
pub use refusal::{ResponseBody, ResponseFuture};
pub use resource::ResourceUrl;
pub use scope::{ImplicationMap, ScopeHierarchy, ScopeRequirement, ScopeSet};
pub use session::{SessionBinding, SessionBindingLayer};
pub use verifier::{Verifier, VerifierExt};
