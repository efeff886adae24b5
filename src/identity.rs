//! Identity: who the request is from, handed to handlers through request extensions.
//!
//! Every accepted request carries an [`AuthInfo`] in its extensions. Read it with
//! [`AuthInfo::from_extensions`], the axum extractor (feature `axum`), or from an rmcp tool
//! (feature `rmcp`, see [`crate::rmcp`]).
//!
//! ```
//! use mcp_server_auth::{AuthInfo, AuthMethod, ScopeSet};
//!
//! let info = AuthInfo::builder("ci", AuthMethod::StaticBearer)
//!     .scopes(ScopeSet::parse("mcp:read").unwrap())
//!     .build();
//! let mut req = http::Request::new(());
//! req.extensions_mut().insert(info);
//! let who = AuthInfo::from_extensions(req.extensions()).unwrap();
//! assert_eq!(who.subject(), "ci");
//! assert!(who.scopes().contains("mcp:read"));
//! ```

use std::{
    fmt,
    ops::Range,
    sync::{Arc, OnceLock},
    time::SystemTime,
};

use serde_json::{Map, Value};

use crate::scope::ScopeSet;

/// Which kind of verifier accepted the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A configured static bearer token ([`crate::bearer::StaticBearer`]).
    StaticBearer,
    /// HTTP Basic ([`crate::basic::BasicAuth`]).
    Basic,
    /// A JWT access token.
    Jwt,
    /// An identity-aware proxy's signed assertion ([`crate::assertion::AssertionVerifier`]).
    ProxyAssertion,
    /// An opaque access token the authorization server vouched for (RFC 7662 introspection,
    /// `introspection` module).
    Introspection,
    /// A verifier of your own, by name.
    Custom(&'static str),
}

impl AuthMethod {
    /// A short lowercase name: `static_bearer`, `basic`, `jwt`, `proxy_assertion`,
    /// `introspection` or the custom name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::StaticBearer => "static_bearer",
            Self::Basic => "basic",
            Self::Jwt => "jwt",
            Self::ProxyAssertion => "proxy_assertion",
            Self::Introspection => "introspection",
            Self::Custom(name) => name,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated identity of a request. Cheap to clone (one reference count).
#[derive(Clone)]
pub struct AuthInfo(Arc<Inner>);

struct Inner {
    /// The strings of the identity in one buffer: one allocation, not one per string. For an
    /// identity built from a token, the claims' JSON text (the token's decoded payload, kept
    /// as it was decoded) and, after it, the subject and client id only when they are not
    /// slices of it already (an escape in the claim); otherwise the subject, then the client.
    text: Box<str>,
    /// Where the subject is in [`text`](Self::text).
    subject: Range<usize>,
    /// Where the client id is in [`text`](Self::text), if there is one.
    client: Option<Range<usize>>,
    /// The length of the claims' JSON text at the start of [`text`](Self::text) (zero unless
    /// the claims are kept as text).
    json_len: usize,
    method: AuthMethod,
    scopes: ScopeSet,
    /// Shared with the verifier's configuration: every identity it issues points to it.
    issuer: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    claims: Claims,
    /// The JWK thumbprint the token is bound to (`cnf.jkt`, RFC 9449 §6).
    jkt: Option<Box<str>>,
    /// A fresh DPoP nonce for the answer (RFC 9449 §8.2), set by [`crate::dpop::Dpop`].
    dpop_nonce: Option<http::HeaderValue>,
    /// The certificate thumbprint the token is bound to (`cnf.x5t#S256`, RFC 8705 §3.1).
    x5t: Option<Box<str>>,
}

/// A token's claims: a map given to the builder, or a verified token's JSON text (the start of
/// [`Inner::text`]), parsed into a map the first time [`AuthInfo::claims`] is called (most
/// requests never ask, so the verifier does not build one for each token).
#[derive(Clone)]
enum Claims {
    None,
    Map(Map<String, Value>),
    Json(OnceLock<Map<String, Value>>),
}

impl Inner {
    fn subject(&self) -> &str {
        &self.text[self.subject.clone()]
    }

    fn client_id(&self) -> Option<&str> {
        Some(&self.text[self.client.clone()?])
    }

    /// The claims' JSON text, when they are kept as text.
    fn claims_json(&self) -> Option<&str> {
        match self.claims {
            Claims::Json(_) => Some(&self.text[..self.json_len]),
            _ => None,
        }
    }
}

/// A string of an identity built from a verified token: a slice of the claims' JSON text (most
/// claims), or a string of its own (a claim holding an escape).
pub(crate) enum TokenPart {
    /// At this range of the JSON text.
    In(Range<usize>),
    /// Not in the JSON text as it is.
    Own(String),
}

impl TokenPart {
    /// `part` (a claim's value read from `json`) as a range of `json` when it is a slice of it,
    /// else as a string of its own.
    pub(crate) fn of(json: &str, part: std::borrow::Cow<'_, str>) -> Self {
        // Where `part` starts, if it points into `json` (a slice of it starts and ends on
        // character boundaries).
        let start = (part.as_ptr() as usize).wrapping_sub(json.as_ptr() as usize);
        match part {
            std::borrow::Cow::Borrowed("") => Self::In(0..0),
            std::borrow::Cow::Borrowed(p)
                if start
                    .checked_add(p.len())
                    .is_some_and(|end| end <= json.len()) =>
            {
                Self::In(start..start + p.len())
            }
            other => Self::Own(other.into_owned()),
        }
    }

    /// Its range in `text`, appending it first when it is a string of its own.
    fn place(self, text: &mut String) -> Range<usize> {
        match self {
            Self::In(range) => range,
            Self::Own(s) => {
                let start = text.len();
                text.push_str(&s);
                start..text.len()
            }
        }
    }
}

/// The identity of a verified token, from its claims.
pub(crate) struct TokenIdentity {
    pub(crate) method: AuthMethod,
    pub(crate) subject: TokenPart,
    pub(crate) client_id: Option<TokenPart>,
    pub(crate) issuer: Arc<str>,
    pub(crate) scopes: ScopeSet,
    pub(crate) expires_at: SystemTime,
    /// The verified claims' JSON text (the token's decoded payload), which the subject's and
    /// the client's [`TokenPart::In`] ranges point into; kept as the claims unless
    /// `claims_map` is given.
    pub(crate) claims_json: String,
    /// The claims parsed already (for a check of the user's own).
    pub(crate) claims_map: Option<Map<String, Value>>,
    /// `cnf.jkt`, when the token is bound to a DPoP key.
    pub(crate) jkt: Option<Box<str>>,
    /// `cnf.x5t#S256`, when the token is bound to a client certificate.
    pub(crate) x5t: Option<Box<str>>,
}

impl AuthInfo {
    /// Starts an identity for `subject`, accepted by `method`.
    pub fn builder(subject: impl Into<String>, method: AuthMethod) -> AuthInfoBuilder {
        AuthInfoBuilder {
            subject: subject.into(),
            method,
            scopes: ScopeSet::new(),
            client_id: None,
            issuer: None,
            expires_at: None,
            claims: None,
            jkt: None,
            x5t: None,
        }
    }

    /// The identity of a verified token: its strings in the buffer of the claims' JSON text
    /// (no copy of it, no allocation of its own unless a string holds an escape), the claims
    /// kept as that text.
    pub(crate) fn from_token(token: TokenIdentity) -> Self {
        let TokenIdentity {
            method,
            subject,
            client_id,
            issuer,
            scopes,
            expires_at,
            claims_json: mut text,
            claims_map,
            jkt,
            x5t,
        } = token;
        let mut json_len = text.len();
        let mut subject = subject.place(&mut text);
        let mut client = client_id.map(|c| c.place(&mut text));
        let claims = match claims_map {
            // Claims parsed already: keep only the subject and the client.
            Some(map) => {
                let mut kept = text[subject.clone()].to_owned();
                subject = 0..kept.len();
                client = client.map(|c| {
                    kept.push_str(&text[c]);
                    subject.end..kept.len()
                });
                (text, json_len) = (kept, 0);
                Claims::Map(map)
            }
            None => Claims::Json(OnceLock::new()),
        };
        Self(Arc::new(Inner {
            text: text.into_boxed_str(),
            subject,
            client,
            json_len,
            method,
            scopes,
            issuer: Some(issuer),
            expires_at: Some(expires_at),
            claims,
            jkt,
            dpop_nonce: None,
            x5t,
        }))
    }

    /// The same identity, with `nonce` to send in the answer's `DPoP-Nonce` header (a copy:
    /// the one a token cache holds is unchanged).
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    pub(crate) fn with_dpop_nonce(&self, nonce: http::HeaderValue) -> Self {
        let i = &*self.0;
        Self(Arc::new(Inner {
            text: i.text.clone(),
            subject: i.subject.clone(),
            client: i.client.clone(),
            json_len: i.json_len,
            method: i.method,
            scopes: i.scopes.clone(),
            issuer: i.issuer.clone(),
            expires_at: i.expires_at,
            claims: i.claims.clone(),
            jkt: i.jkt.clone(),
            dpop_nonce: Some(nonce),
            x5t: i.x5t.clone(),
        }))
    }

    /// The nonce to send in the answer's `DPoP-Nonce` header, if any.
    pub(crate) fn dpop_nonce(&self) -> Option<&http::HeaderValue> {
        self.0.dpop_nonce.as_ref()
    }

    /// The identity a request's extensions carry, if an auth layer accepted it.
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&AuthInfo> {
        extensions.get::<AuthInfo>()
    }

    /// The subject: the token's name for a static token, the user-id for Basic, `sub` for a JWT,
    /// the email (else the service token's `common_name`, else `sub`) for a proxy's assertion.
    pub fn subject(&self) -> &str {
        self.0.subject()
    }

    /// Which verifier accepted the request.
    pub fn method(&self) -> AuthMethod {
        self.0.method
    }

    /// The scopes granted.
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// The OAuth client (`client_id`), where known.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id()
    }

    /// The `username` claim, where there is one (an introspection answer's human-readable
    /// name of the resource owner, RFC 7662 §2.2). Not an identifier: use
    /// [`subject`](Self::subject) or [`principal_key`](Self::principal_key) to tell principals
    /// apart.
    pub fn username(&self) -> Option<&str> {
        self.claims()?.get("username")?.as_str()
    }

    /// The issuer (`iss`), where known.
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }

    /// When the credentials expire, where known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// The JWK SHA-256 thumbprint (RFC 7638) of the key the token is bound to: its `cnf.jkt`
    /// (RFC 9449 §6). A request carrying a bound token was accepted only with a DPoP proof
    /// signed by that key ([`crate::dpop`]).
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.0.jkt.as_deref()
    }

    /// The Base64url SHA-256 thumbprint of the client certificate the token is bound to: its
    /// `cnf.x5t#S256` (RFC 8705 §3.1). A request carrying such a token was accepted only over
    /// a connection with that client certificate ([`crate::mtls`]).
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.0.x5t.as_deref()
    }

    /// The raw claims of a token, where there are any.
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        match &self.0.claims {
            Claims::None => None,
            Claims::Map(map) => Some(map),
            // The text is a JSON object (the verifier read it); a repeated name keeps its last
            // value, as everywhere else.
            Claims::Json(map) => Some(map.get_or_init(|| {
                serde_json::from_str(self.0.claims_json().unwrap_or_default()).unwrap_or_default()
            })),
        }
    }

    /// The claims' JSON text, when they were kept as text (not yet parsed, or parsed on
    /// demand): for the token cache's memory estimate.
    pub(crate) fn claims_json(&self) -> Option<&str> {
        self.0.claims_json()
    }

    /// The claims deserialized into a type of yours.
    pub fn claims_as<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Option<Result<T, serde_json::Error>> {
        self.claims()
            .map(|c| T::deserialize(Value::Object(c.clone())))
    }

    /// A stable key for the principal, `issuer` + `subject`, to bind server-side state (handles,
    /// `requestState`) to the caller rather than to a connection.
    ///
    /// Without an issuer, this tells a static token from a Basic user of the same name apart
    /// only by [`method`](Self::method); [`principal_key`](Self::principal_key) includes it.
    pub fn principal(&self) -> (Option<&str>, &str) {
        (self.issuer(), self.subject())
    }

    /// The principal as one comparable key: `issuer` + `subject` when the credentials name an
    /// issuer (a JWT's `iss`), otherwise the [`AuthMethod`] + `subject` (a static token's name,
    /// a Basic user-id), so that a static token and a Basic user with the same name are two
    /// principals. Two requests with equal keys come from the same principal, whatever their
    /// scopes, client or expiry; [`crate::session::SessionBindingLayer`] binds MCP sessions
    /// to it.
    ///
    /// ```
    /// use mcp_server_auth::{AuthInfo, AuthMethod};
    ///
    /// let token = AuthInfo::builder("alice", AuthMethod::StaticBearer).build();
    /// let user = AuthInfo::builder("alice", AuthMethod::Basic).build();
    /// assert_ne!(token.principal_key(), user.principal_key());
    ///
    /// let jwt = AuthInfo::builder("alice", AuthMethod::Jwt)
    ///     .issuer("https://auth.example.com")
    ///     .build();
    /// let again = AuthInfo::builder("alice", AuthMethod::Introspection)
    ///     .issuer("https://auth.example.com")
    ///     .build();
    /// assert_eq!(jwt.principal_key(), again.principal_key()); // one issuer, one subject
    /// ```
    pub fn principal_key(&self) -> PrincipalKey<'_> {
        match self.issuer() {
            Some(issuer) => PrincipalKey::Issued {
                issuer,
                subject: self.subject(),
            },
            None => PrincipalKey::Local {
                method: self.method(),
                subject: self.subject(),
            },
        }
    }
}

/// Who a request is from, as a key for server-side state: see [`AuthInfo::principal_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrincipalKey<'a> {
    /// A subject of an issuer: the token's `iss` and `sub`. The same for every verifier that
    /// trusts that issuer.
    Issued {
        /// The issuer (`iss`).
        issuer: &'a str,
        /// The subject (`sub`).
        subject: &'a str,
    },
    /// A subject this server knows on its own (no issuer): a static token's name, a Basic
    /// user-id, or the subject of a custom verifier that names no issuer, within its method.
    Local {
        /// The verifier that accepted the credentials.
        method: AuthMethod,
        /// The subject.
        subject: &'a str,
    },
}

impl fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInfo")
            .field("subject", &self.subject())
            .field("method", &self.0.method)
            .field("scopes", &self.0.scopes)
            .field("client_id", &self.client_id())
            .field("issuer", &self.0.issuer)
            .field("expires_at", &self.0.expires_at)
            .field("claims", &self.claims().map(|c| c.len()))
            .field("dpop_jkt", &self.0.jkt)
            .field("certificate_thumbprint", &self.0.x5t)
            .finish()
    }
}

/// Builds an [`AuthInfo`].
#[derive(Debug)]
pub struct AuthInfoBuilder {
    subject: String,
    method: AuthMethod,
    scopes: ScopeSet,
    client_id: Option<String>,
    issuer: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    claims: Option<Map<String, Value>>,
    jkt: Option<Box<str>>,
    x5t: Option<Box<str>>,
}

impl AuthInfoBuilder {
    /// The scopes granted.
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// The OAuth client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into().into());
        self
    }

    /// The expiry.
    ///
    /// A verifier that reads it from a token's seconds should not compute
    /// `UNIX_EPOCH + Duration::from_secs(exp)`, which panics when `exp` is beyond what
    /// `SystemTime` holds; use `checked_add`, and refuse the token when it returns `None`:
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let exp: u64 = 16_523_839_413_723_587_072; // untrusted
    /// assert!(UNIX_EPOCH.checked_add(Duration::from_secs(exp)).is_none());
    /// ```
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The raw claims.
    pub fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims = Some(claims);
        self
    }

    /// The JWK thumbprint the token is bound to (`cnf.jkt`, RFC 9449 §6). Set it in a verifier
    /// of your own for a bound token: a [`Dpop`](crate::dpop::Dpop) verifier around yours
    /// then accepts it only with a DPoP proof by that key, never as a bearer token.
    pub fn dpop_jkt(mut self, jkt: impl Into<String>) -> Self {
        self.jkt = Some(jkt.into().into_boxed_str());
        self
    }

    /// The client certificate thumbprint the token is bound to (`cnf.x5t#S256`, RFC 8705 §3.1).
    /// Set it in a verifier of your own for a certificate-bound token: a
    /// [`CertificateBound`](crate::mtls::CertificateBound) verifier around yours then accepts
    /// it only with that client certificate.
    pub fn certificate_thumbprint(mut self, x5t: impl Into<String>) -> Self {
        self.x5t = Some(x5t.into().into_boxed_str());
        self
    }

    /// Finishes the identity.
    pub fn build(self) -> AuthInfo {
        let subject_end = self.subject.len();
        let (text, client) = match self.client_id {
            // The subject's own buffer (no copy when it has no spare capacity).
            None => (self.subject.into_boxed_str(), None),
            Some(client) => {
                let mut text = self.subject;
                text.push_str(&client);
                (
                    text.into_boxed_str(),
                    Some(subject_end..subject_end + client.len()),
                )
            }
        };
        AuthInfo(Arc::new(Inner {
            text,
            subject: 0..subject_end,
            client,
            json_len: 0,
            method: self.method,
            scopes: self.scopes,
            issuer: self.issuer,
            expires_at: self.expires_at,
            claims: self.claims.map_or(Claims::None, Claims::Map),
            jkt: self.jkt,
            dpop_nonce: None,
            x5t: self.x5t,
        }))
    }
}
