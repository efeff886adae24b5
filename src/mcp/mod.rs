//! MCP-aware authorization: the scopes each MCP operation needs.
//!
//! An [`AuthLayer`](crate::AuthLayer) decides *who* is calling and what every request needs.
//! An [`McpScopeLayer`], placed inside it, decides per MCP operation: `tools/call` of one tool
//! may need `mcp:write` while another needs `mcp:read` and `tools/list` needs nothing more.
//! A caller without the scopes gets `403` with `error="insufficient_scope"` and a `scope`
//! naming everything the operation needs, so MCP clients step up (re-authorize with those
//! scopes) on their own.
//!
//! How the layer learns the operation ([`operation`]):
//! - MCP 2026-07-28 clients send `Mcp-Method` and `Mcp-Name` headers, and servers must refuse
//!   a request whose headers disagree with its body (SEP-2243; rmcp does). The layer reads only
//!   the headers when that check is certain to happen: `MCP-Protocol-Version` appears once and
//!   is, byte for byte, a revision of
//!   [`HEADER_CHECKING_REVISIONS`](operation::HEADER_CHECKING_REVISIONS) (today
//!   `2026-07-28`). A later revision, or a value with whitespace around it (HTTP/2 keeps it; a
//!   server comparing the raw value would not recognize the revision and skip its check), is
//!   decided on the body.
//! - Even then, `Mcp-Name` is defined only for `tools/call`, `prompts/get` and
//!   `resources/read`. `resources/subscribe`, `resources/unsubscribe` and `completion/complete`
//!   also name a resource or prompt (the last in `params.ref`), which only the body says: for
//!   them the layer reads the body, so that a prompt's or resource's scopes cover every method
//!   that names it.
//! - Older clients send no such headers: the layer reads the JSON-RPC body (at most 4 MiB by
//!   default; every element of a batch), decides, and hands the same bytes on. It does the same
//!   for every request when [`verify_headers`](McpScopeLayer::verify_headers) is on. Whenever it
//!   reads a body, it also refuses headers that disagree with it (`400`, JSON-RPC `-32020`).
//! - A body it cannot read is refused (`400`, `-32700` or `-32600`), never passed on unchecked.
//!   Duplicated or malformed `Mcp-Method`/`Mcp-Name` headers get `400` with `-32020`.
//!
//! The request body type must be constructible from [`Bytes`](bytes::Bytes) (axum's `Body`
//! is); with hyper, map `Incoming` into such a body first (for example with
//! `axum::body::Body::new`).
//!
//! # The stack
//! Outermost first: CORS (tower-http's `CorsLayer`) → [`OriginLayer`](crate::origin) →
//! [`AuthLayer`](crate::AuthLayer) → [`McpScopeLayer`] → the MCP service. In axum the last
//! `.layer(...)` is the outermost:
//!
//! ```
//! use axum::{Router, routing::post};
//! use mcp_server_auth::{AuthLayer, ScopeSet, bearer::StaticBearer, mcp::OperationScopes};
//!
//! let tokens = StaticBearer::builder()
//!     .token_with_scopes("ci", "c2VjcmV0LXRva2VuLWZvci1jaS0xMjM0", ScopeSet::parse("mcp:read").unwrap())
//!     .build()
//!     .unwrap();
//! let auth = AuthLayer::new(tokens);
//! let scopes = OperationScopes::builder()
//!     .tool("echo", ["mcp:read"])
//!     .tool("write_note", ["mcp:write"])
//!     .build()
//!     .unwrap();
//! let app: Router = Router::new()
//!     .route("/mcp", post(|| async { "the MCP service goes here" }))
//!     .layer(auth.mcp_scopes(scopes)) // inside: sees the caller's identity
//!     .layer(auth); // outside: authenticates
//! ```
//!
//! # Filtering `tools/list`
//! `tools/list` stays callable with the baseline scope, so clients can always see what a
//! server offers. MCP 2026-07-28 allows the list to vary with the authorization presented on
//! the request: keep a clone of the layer and ask [`McpScopeLayer::permits`] for each tool with
//! the caller's [`AuthInfo`](crate::AuthInfo) (in rmcp, from
//! [`Caller`](crate::rmcp::Caller) or the request parts), and leave out the tools it refuses.

pub mod layer;
pub mod operation;
pub mod operation_scopes;

pub use layer::{DEFAULT_MAX_BODY_BYTES, McpScope, McpScopeLayer};
pub use operation::{NameKind, Operation, OperationError};
pub use operation_scopes::{OperationScopes, OperationScopesBuilder, OperationScopesError};
