//! Configuring an [`AuthLayer`](super::AuthLayer).

use std::{sync::Arc, time::Duration};

use super::{AuthLayer, Shared};
use crate::admission::Admission;
use crate::{
    credentials::DEFAULT_MAX_HEADER_BYTES,
    metadata::{DEFAULT_MAX_AGE, MetadataEndpoint, ProtectedResourceMetadata},
    refusal::challenge::{ChallengeSettings, Responder},
    scope::{ScopeError, ScopeHierarchy, ScopeRequirement, ScopeSet},
    verifier::Verifier,
};

/// What is wrong with a layer's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The verifier understands no scheme and reads no [`Schemes::PROXY`] credentials, so
    /// every request would be refused.
    ///
    /// [`Schemes::PROXY`]: crate::verifier::Schemes::PROXY
    #[error(
        "the verifier accepts no credentials at all (no token, user, key or proxy assertion is \
         configured)"
    )]
    NoScheme,
    /// The realm is empty or not printable ASCII.
    #[error(
        "the realm must be non-empty printable ASCII without '\"' or '\\\\', and must not contain \
         `scope=`, `error=` or `resource_metadata=` (MCP clients would misread the challenge)"
    )]
    Realm,
    /// A scope is invalid, or `offline_access` would be advertised.
    #[error("challenge scope: {0}")]
    Scope(#[from] ScopeError),
    /// The header size limit is too small to carry any credentials.
    #[error("max_header_bytes must be at least 64")]
    HeaderLimit,
}

/// Configures an [`AuthLayer`].
#[derive(Debug)]
pub struct AuthLayerBuilder<V> {
    verifier: V,
    metadata: Option<ProtectedResourceMetadata>,
    serve_root: bool,
    metadata_max_age: Duration,
    required: Option<ScopeRequirement>,
    hierarchy: Option<Arc<dyn ScopeHierarchy>>,
    challenge_scope: Option<ScopeSet>,
    realm: String,
    descriptions: bool,
    max_header_bytes: usize,
    forward_authorization: bool,
    challenge_granted: bool,
}

impl<V: Verifier> AuthLayerBuilder<V> {
    pub(super) fn new(verifier: V) -> Self {
        Self {
            verifier,
            metadata: None,
            serve_root: false,
            metadata_max_age: DEFAULT_MAX_AGE,
            required: None,
            hierarchy: None,
            challenge_scope: None,
            realm: "mcp".to_owned(),
            descriptions: false,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            forward_authorization: false,
            challenge_granted: true,
        }
    }

    /// Advertises and serves this Protected Resource Metadata document. Every Bearer challenge
    /// then carries `resource_metadata` (its absolute URL) and `scope`, and the layer answers
    /// the document's well-known path without authentication.
    pub fn metadata(mut self, metadata: ProtectedResourceMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Also serves the document at the root, `/.well-known/oauth-protected-resource`, with
    /// `resource` = the origin, for clients that predate path insertion (off by default; use it
    /// only when this is the one resource on its host).
    pub fn serve_metadata_at_root(mut self, yes: bool) -> Self {
        self.serve_root = yes;
        self
    }

    /// How long clients may cache the document (`Cache-Control: public, max-age=…`); one hour
    /// by default.
    pub fn metadata_max_age(mut self, max_age: Duration) -> Self {
        self.metadata_max_age = max_age;
        self
    }

    /// Scopes every request must have; otherwise `403 insufficient_scope` naming them all.
    pub fn required_scopes(mut self, requirement: ScopeRequirement) -> Self {
        self.required = Some(requirement);
        self
    }

    /// A scope hierarchy: a broader scope held satisfies a narrower one required (MCP
    /// 2026-07-28). Used by this layer and by its [`require_scopes`](AuthLayer::require_scopes)
    /// layers. By default scopes match exactly.
    pub fn scope_hierarchy(mut self, hierarchy: impl ScopeHierarchy + 'static) -> Self {
        self.hierarchy = Some(Arc::new(hierarchy));
        self
    }

    /// The `scope` of the `401` challenges: the scopes a client should ask for at first contact.
    /// By default: the required scopes, else the metadata's `scopes_supported`, else none.
    pub fn challenge_scope(mut self, scopes: ScopeSet) -> Self {
        self.challenge_scope = Some(scopes);
        self
    }

    /// The realm of the Basic challenge, and of the Bearer challenge when no metadata is
    /// configured. Default `mcp`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Sends `error_description` (fixed texts that reveal no validation internals) in
    /// challenges and bodies. Off by default.
    pub fn error_descriptions(mut self, yes: bool) -> Self {
        self.descriptions = yes;
        self
    }

    /// The largest `Authorization` header accepted (default 8 KiB); larger → `400`.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// **Opt-out**: keep the `Authorization` header on requests passed to the inner service.
    /// By default it is removed, so that the token cannot be passed through to another
    /// service (MCP forbids token passthrough). Only turn this on if the inner service must see
    /// the header and never forwards it.
    pub fn forward_authorization_header(mut self, yes: bool) -> Self {
        self.forward_authorization = yes;
        self
    }

    /// Whether a `403 insufficient_scope` challenge also names the scopes the caller already
    /// holds that this server uses (required, challenged, advertised or per-operation ones).
    /// On by default: MCP clients of 2025-11-25 and before (the TypeScript SDK 1.x among them)
    /// *replace* their scopes with the challenged ones when they re-authorize, and would lose
    /// what they had; MCP 2026-07-28 clients take the union either way, and the spec allows
    /// either form. Turn off to name only what the operation needs.
    pub fn challenge_granted_scopes(mut self, yes: bool) -> Self {
        self.challenge_granted = yes;
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<AuthLayer<V>, BuildError> {
        let schemes = self.verifier.schemes();
        if schemes.is_empty() {
            return Err(BuildError::NoScheme);
        }
        if self.realm.is_empty()
            || !self
                .realm
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
            || crate::scope::mimics_challenge_param(&self.realm)
        {
            return Err(BuildError::Realm);
        }
        if self.max_header_bytes < 64 {
            return Err(BuildError::HeaderLimit);
        }
        let scope = match self.challenge_scope {
            Some(s) => Some(s),
            None => match (&self.required, &self.metadata) {
                (Some(r), _) if !r.is_any_of() => Some(r.challenge_scopes().clone()),
                (_, Some(m)) if !m.scopes_supported().is_empty() => {
                    Some(ScopeSet::try_from_iter(m.scopes_supported())?)
                }
                _ => None,
            },
        }
        .filter(|s| !s.is_empty());
        if let Some(s) = &scope {
            s.refuse_offline_access()?;
        }
        let known = ScopeSet::from_iter_lossy(
            scope
                .iter()
                .flat_map(ScopeSet::iter)
                .chain(
                    self.required
                        .iter()
                        .flat_map(|r| r.challenge_scopes().iter()),
                )
                .chain(
                    self.metadata
                        .iter()
                        .flat_map(|m| m.scopes_supported().iter().map(String::as_str)),
                ),
        );
        let responder = Responder::new(ChallengeSettings {
            schemes: schemes.clone(),
            realm: self.realm,
            resource_metadata: self
                .metadata
                .as_ref()
                .and_then(ProtectedResourceMetadata::url),
            scope,
            descriptions: self.descriptions,
            required: self.required.as_ref().map(|r| r.challenge_scopes().clone()),
        });
        let metadata = self
            .metadata
            .as_ref()
            .map(|m| MetadataEndpoint::new(m, self.serve_root, self.metadata_max_age));
        Ok(AuthLayer {
            shared: Arc::new(Shared {
                verifier: self.verifier,
                schemes,
                metadata,
                max_header_bytes: self.max_header_bytes,
                admission: Arc::new(Admission {
                    required: self.required,
                    hierarchy: self.hierarchy,
                    forward_authorization: self.forward_authorization,
                    responder,
                    known,
                    challenge_granted: self.challenge_granted,
                }),
            }),
        })
    }
}
