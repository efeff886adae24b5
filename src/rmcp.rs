//! rmcp integration (feature `rmcp`): reading the caller's [`AuthInfo`] in a tool.
//!
//! rmcp's `StreamableHttpService` puts the HTTP request's `http::request::Parts`, with the
//! extensions the [`AuthLayer`](crate::AuthLayer) filled, into the context of every MCP request.
//! [`Caller`] takes the [`AuthInfo`] from there, as a tool parameter:
//!
//! ```ignore
//! use mcp_server_auth::rmcp::Caller;
//!
//! #[tool(description = "Who am I?")]
//! async fn whoami(&self, Caller(who): Caller) -> String {
//!     who.subject().to_owned()
//! }
//! ```
//!
//! Without this feature the same works by hand:
//! `Extension(parts): Extension<http::request::Parts>`, then
//! `parts.extensions.get::<AuthInfo>()`.

use rmcp::{
    ErrorData, RoleServer,
    handler::server::common::{AsRequestContext, FromContextPart},
    service::RequestContext,
};

use crate::identity::AuthInfo;

/// The authenticated caller of an MCP request, as an rmcp tool or prompt parameter. Fails with
/// an internal error if the server is not behind an [`AuthLayer`](crate::AuthLayer).
#[derive(Debug, Clone)]
pub struct Caller(pub AuthInfo);

/// The [`AuthInfo`] of the HTTP request behind an MCP request context, if any.
pub fn auth_info(context: &RequestContext<RoleServer>) -> Option<&AuthInfo> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<AuthInfo>())
}

impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        auth_info(context.as_request_context())
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                ErrorData::internal_error(
                    "no authenticated caller: is the server behind an AuthLayer?",
                    None,
                )
            })
    }
}
