//! Verifier: static bearer tokens.
//!
//! Several named tokens can be active at once, so a token can be rotated without downtime; the
//! name is the caller's identity ([`AuthInfo::subject`]). Tokens are kept only as keyed 128-bit
//! SipHash-1-3 tags under a random key drawn once per process: the plaintext is not kept, the
//! lookup is by tag (a pseudorandom value the client cannot steer) and the final comparison is
//! branch-free, so neither the number of tokens nor how close a guess is shows in the response
//! time.
//!
//! ```
//! use mcp_server_auth::bearer::StaticBearer;
//!
//! let tokens = StaticBearer::builder()
//!     .token("laptop", "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAA")
//!     .token("ci", "c2VjcmV0LXRva2VuLWZvci1jaS0xMjM0")
//!     .build()
//!     .unwrap();
//! assert_eq!(tokens.len(), 2);
//! ```

use std::collections::HashMap;

use crate::{
    credentials::{Scheme, is_b64token},
    identity::{AuthInfo, AuthMethod},
    scope::ScopeSet,
    secret::{SecretTag, TagHasher, TagKey},
    verifier::{
        AuthRequest, Credentials, Invalid, Presented, Recall, Rejection, Schemes, Verdict, Verifier,
    },
};

/// The shortest token accepted without [`StaticBearerBuilder::allow_short_tokens`]: 16 bytes.
pub const MIN_TOKEN_BYTES: usize = 16;

/// What is wrong with a configured static token. No variant contains the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StaticTokenError {
    /// No token was configured.
    #[error("no bearer token is configured: add at least one")]
    NoTokens,
    /// A token is empty.
    #[error("the bearer token named {name:?} is empty")]
    Empty {
        /// The token's name.
        name: String,
    },
    /// A token is shorter than [`MIN_TOKEN_BYTES`].
    #[error(
        "the bearer token named {name:?} has {len} bytes; use at least {MIN_TOKEN_BYTES} \
         (32 random bytes, base64url-encoded, is a good choice)"
    )]
    TooShort {
        /// The token's name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A token has characters a client could not send (outside RFC 6750 `b64token`).
    #[error(
        "the bearer token named {name:?} has characters outside RFC 6750 b64token \
         (letters, digits, - . _ ~ + / and trailing =); no client could send it"
    )]
    InvalidCharacters {
        /// The token's name.
        name: String,
    },
    /// A name is empty or has control characters.
    #[error("a bearer token name is empty or has control characters")]
    InvalidName,
    /// The same token was configured twice.
    #[error("the bearer token named {name:?} is configured twice")]
    Duplicate {
        /// The name of the second occurrence.
        name: String,
    },
}

/// Accepts any of a set of configured bearer tokens.
#[derive(Clone)]
pub struct StaticBearer {
    tokens: HashMap<SecretTag, AuthInfo, TagHasher>,
}

impl std::fmt::Debug for StaticBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.tokens.values().map(AuthInfo::subject).collect();
        names.sort_unstable();
        f.debug_struct("StaticBearer")
            .field("token_names", &names)
            .finish_non_exhaustive()
    }
}

impl StaticBearer {
    /// Starts an empty set of tokens.
    pub fn builder() -> StaticBearerBuilder {
        StaticBearerBuilder::default()
    }

    /// Builds a verifier from `(name, token)` pairs.
    pub fn new<I, N, T>(tokens: I) -> Result<Self, StaticTokenError>
    where
        I: IntoIterator<Item = (N, T)>,
        N: Into<String>,
        T: AsRef<[u8]>,
    {
        tokens
            .into_iter()
            .fold(Self::builder(), |b, (n, t)| b.token(n, t))
            .build()
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens (never true for a built verifier).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Verifier for StaticBearer {
    fn schemes(&self) -> Schemes {
        Schemes::BEARER
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let Credentials::Bearer(token) = request.credentials() else {
            return Verdict::Ready(Err(Rejection::NoCredentials));
        };
        let tag = request
            .token_tag()
            .unwrap_or_else(|| TagKey::process().tag(token.as_bytes()));
        Verdict::Ready(match self.tokens.get(&tag) {
            Some(info) => Ok(info.clone()),
            None => Err(Rejection::Invalid(Invalid::UnknownToken)),
        })
    }

    /// Configured tokens passed the `b64token` check when they were built: a tag found here is
    /// of bytes the layer would accept.
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        if presented.scheme() != Scheme::Bearer {
            return Recall::Refused;
        }
        match self.tokens.get(&presented.tag()) {
            Some(info) => Recall::Accepted(info.clone()),
            None => Recall::Refused,
        }
    }
}

/// What is wrong with the token `token` named `name`, if anything (as [`StaticBearerBuilder::build`]
/// would report it, before duplicates).
pub(crate) fn check_token(name: &str, token: &[u8]) -> Result<(), StaticTokenError> {
    if name.is_empty() || name.chars().any(char::is_control) {
        Err(StaticTokenError::InvalidName)
    } else if token.is_empty() {
        Err(StaticTokenError::Empty {
            name: name.to_owned(),
        })
    } else if !std::str::from_utf8(token).is_ok_and(is_b64token) {
        Err(StaticTokenError::InvalidCharacters {
            name: name.to_owned(),
        })
    } else if token.len() < MIN_TOKEN_BYTES {
        Err(StaticTokenError::TooShort {
            name: name.to_owned(),
            len: token.len(),
        })
    } else {
        Ok(())
    }
}

/// Splits one entry of a token list (`MCP_AUTH_BEARER_TOKENS`, a line of a token file) into its
/// name and what follows the name: `name:token`, or a bare `token` named `token-<position>`.
/// `None` when the name or the rest is empty. Both are trimmed; nothing else is checked.
pub(crate) fn parse_entry(entry: &str, position: usize) -> Option<(String, &str)> {
    let (name, token) = match entry.split_once(':') {
        Some((n, t)) => (n.trim().to_owned(), t.trim()),
        None => (format!("token-{position}"), entry.trim()),
    };
    (!name.is_empty() && !token.is_empty()).then_some((name, token))
}

/// Builds a [`StaticBearer`]. Errors are reported by [`build`](Self::build).
#[derive(Default)]
pub struct StaticBearerBuilder {
    entries: Vec<(String, SecretTag, Result<(), StaticTokenError>, ScopeSet)>,
    allow_short: bool,
}

impl std::fmt::Debug for StaticBearerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticBearerBuilder")
            .field("tokens", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl StaticBearerBuilder {
    /// Adds a token; `name` becomes the subject of requests that present it. Several tokens
    /// may share a name (an old and a new one, during rotation).
    pub fn token(self, name: impl Into<String>, token: impl AsRef<[u8]>) -> Self {
        self.token_with_scopes(name, token, ScopeSet::new())
    }

    /// Adds a token that grants `scopes`.
    pub fn token_with_scopes(
        mut self,
        name: impl Into<String>,
        token: impl AsRef<[u8]>,
        scopes: ScopeSet,
    ) -> Self {
        let name = name.into();
        let token = token.as_ref();
        let check = check_token(&name, token);
        let tag = TagKey::process().tag(token);
        self.entries.push((name, tag, check, scopes));
        self
    }

    /// Accepts tokens shorter than [`MIN_TOKEN_BYTES`]. **For tests only**: a short token can
    /// be guessed.
    pub fn allow_short_tokens(mut self) -> Self {
        self.allow_short = true;
        self
    }

    /// Checks every token and builds the verifier.
    pub fn build(self) -> Result<StaticBearer, StaticTokenError> {
        if self.entries.is_empty() {
            return Err(StaticTokenError::NoTokens);
        }
        let mut tokens =
            HashMap::with_capacity_and_hasher(self.entries.len(), TagHasher::default());
        for (name, tag, check, scopes) in self.entries {
            match check {
                Err(StaticTokenError::TooShort { .. }) if self.allow_short => {}
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            let info = AuthInfo::builder(name.clone(), AuthMethod::StaticBearer)
                .scopes(scopes)
                .build();
            if tokens.insert(tag, info).is_some() {
                return Err(StaticTokenError::Duplicate { name });
            }
        }
        Ok(StaticBearer { tokens })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_and_refuses_others() {
        let v =
            StaticBearer::new([("a", "aaaaaaaaaaaaaaaa1"), ("b", "bbbbbbbbbbbbbbbb2")]).unwrap();
        let ok = v.verify(&AuthRequest::credentials_only(Credentials::Bearer(
            "bbbbbbbbbbbbbbbb2",
        )));
        assert!(matches!(ok, Verdict::Ready(Ok(ref i)) if i.subject() == "b"));
        let no = v.verify(&AuthRequest::credentials_only(Credentials::Bearer(
            "bbbbbbbbbbbbbbbb3",
        )));
        assert!(matches!(
            no,
            Verdict::Ready(Err(Rejection::Invalid(Invalid::UnknownToken)))
        ));
    }

    #[test]
    fn construction_errors() {
        assert_eq!(
            StaticBearer::new::<_, &str, &str>([]).unwrap_err(),
            StaticTokenError::NoTokens
        );
        assert!(matches!(
            StaticBearer::new([("a", "")]),
            Err(StaticTokenError::Empty { .. })
        ));
        assert!(matches!(
            StaticBearer::new([("a", "short")]),
            Err(StaticTokenError::TooShort { len: 5, .. })
        ));
        assert!(matches!(
            StaticBearer::new([("a", "has space in it!!!!!")]),
            Err(StaticTokenError::InvalidCharacters { .. })
        ));
        assert!(matches!(
            StaticBearer::new([("a", "aaaaaaaaaaaaaaaa1"), ("b", "aaaaaaaaaaaaaaaa1")]),
            Err(StaticTokenError::Duplicate { .. })
        ));
        assert!(
            StaticBearer::builder()
                .token("t", "short")
                .allow_short_tokens()
                .build()
                .is_ok()
        );
        let e = StaticBearer::new([("a", "sekrit")])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("sekrit"));
    }
}
