//! Verifier: HTTP Basic (RFC 7617).
//!
//! Several users; passwords are kept only as keyed 128-bit SipHash-1-3 tags (random key) and
//! compared branch-free, and an unknown user costs the same work as a known one. The challenge is
//! `Basic realm="…", charset="UTF-8"` (the realm is the layer's, see
//! [`AuthLayerBuilder::realm`](crate::AuthLayerBuilder::realm)). Use Basic only over TLS: the
//! password travels in clear text.
//!
//! ```
//! use mcp_server_auth::basic::BasicAuth;
//!
//! let users = BasicAuth::builder().user("alice", "correct horse battery staple").build().unwrap();
//! assert_eq!(users.len(), 1);
//! ```

use std::collections::HashMap;

use crate::{
    credentials::Scheme,
    identity::{AuthInfo, AuthMethod},
    scope::ScopeSet,
    secret::{SecretTag, TagKey},
    verifier::{
        AuthRequest, Credentials, Invalid, Presented, Recall, Rejection, Schemes, Verdict, Verifier,
    },
};

/// What is wrong with a configured Basic user. No variant contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicUserError {
    /// No user was configured.
    #[error("no Basic user is configured: add at least one")]
    NoUsers,
    /// A user-id is empty, contains a colon (RFC 7617 forbids it) or control characters. Holds
    /// the user-id up to its first colon only: what follows may be a password pasted there.
    #[error("the Basic user-id {0:?} is empty or contains ':' or control characters")]
    InvalidUser(String),
    /// A password is empty or has control characters.
    #[error("the password of Basic user {0:?} is empty or contains control characters")]
    InvalidPassword(String),
    /// The same user-id was configured twice.
    #[error("the Basic user {0:?} is configured twice")]
    Duplicate(String),
}

struct User {
    password: SecretTag,
    info: AuthInfo,
}

/// Accepts HTTP Basic credentials of configured users.
pub struct BasicAuth {
    key: TagKey,
    users: HashMap<String, User>,
    decoy: SecretTag,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.users.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("BasicAuth")
            .field("users", &names)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Starts an empty set of users.
    pub fn builder() -> BasicAuthBuilder {
        BasicAuthBuilder::default()
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (never true for a built verifier).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl Verifier for BasicAuth {
    fn schemes(&self) -> Schemes {
        Schemes::BASIC
    }

    /// Bearer tokens are refused (`verify` says `NoCredentials`); Basic credentials are parsed.
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        if presented.scheme() == Scheme::Bearer {
            Recall::Refused
        } else {
            Recall::Unsure
        }
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let Credentials::Basic(basic) = request.credentials() else {
            return Verdict::Ready(Err(Rejection::NoCredentials));
        };
        let presented = self.key.tag(basic.password().as_bytes());
        let user = self.users.get(basic.user());
        // Compare against a decoy for unknown users, so both paths cost the same.
        let expected = user.map_or(&self.decoy, |u| &u.password);
        let matches = *expected == presented;
        Verdict::Ready(match user {
            Some(u) if matches => Ok(u.info.clone()),
            _ => Err(Rejection::Invalid(Invalid::WrongPassword)),
        })
    }
}

/// Builds a [`BasicAuth`]. Errors are reported by [`build`](Self::build).
#[derive(Default)]
pub struct BasicAuthBuilder {
    key: Option<TagKey>,
    users: Vec<(String, Result<SecretTag, BasicUserError>, ScopeSet)>,
}

impl std::fmt::Debug for BasicAuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthBuilder")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuthBuilder {
    /// Adds a user.
    pub fn user(self, user: impl Into<String>, password: impl AsRef<str>) -> Self {
        self.user_with_scopes(user, password, ScopeSet::new())
    }

    /// Adds a user who is granted `scopes`.
    pub fn user_with_scopes(
        mut self,
        user: impl Into<String>,
        password: impl AsRef<str>,
        scopes: ScopeSet,
    ) -> Self {
        let user = user.into();
        let password = password.as_ref();
        let digest = if user.is_empty() || user.contains(':') || user.chars().any(char::is_control)
        {
            let shown = match user.split_once(':') {
                Some((name, _)) => format!("{name}:…"),
                None => user.chars().filter(|c| !c.is_control()).collect(),
            };
            Err(BasicUserError::InvalidUser(shown))
        } else if password.is_empty() || password.chars().any(char::is_control) {
            Err(BasicUserError::InvalidPassword(user.clone()))
        } else {
            Ok(self
                .key
                .get_or_insert_with(TagKey::random)
                .tag(password.as_bytes()))
        };
        self.users.push((user, digest, scopes));
        self
    }

    /// Checks every user and builds the verifier.
    pub fn build(self) -> Result<BasicAuth, BasicUserError> {
        if self.users.is_empty() {
            return Err(BasicUserError::NoUsers);
        }
        let mut users = HashMap::with_capacity(self.users.len());
        for (name, digest, scopes) in self.users {
            let password = digest?;
            let info = AuthInfo::builder(name.clone(), AuthMethod::Basic)
                .scopes(scopes)
                .build();
            if users
                .insert(name.clone(), User { password, info })
                .is_some()
            {
                return Err(BasicUserError::Duplicate(name));
            }
        }
        let key = self.key.unwrap_or_else(TagKey::random);
        Ok(BasicAuth {
            decoy: key.tag(b"\0decoy: no password hashes to this\0"),
            key,
            users,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::basic;

    #[test]
    fn checks_password() {
        let v = BasicAuth::builder().user("u", "pa:ss").build().unwrap();
        let good = basic("dTpwYTpzcw==").unwrap(); // u:pa:ss
        assert!(matches!(
            v.verify(&AuthRequest::credentials_only(Credentials::Basic(&good))),
            Verdict::Ready(Ok(_))
        ));
        let bad = basic("dTpwYXNz").unwrap(); // u:pass
        assert!(matches!(
            v.verify(&AuthRequest::credentials_only(Credentials::Basic(&bad))),
            Verdict::Ready(Err(_))
        ));
        let unknown = basic("eDpwYTpzcw==").unwrap(); // x:pa:ss
        assert!(matches!(
            v.verify(&AuthRequest::credentials_only(Credentials::Basic(&unknown))),
            Verdict::Ready(Err(_))
        ));
    }

    #[test]
    fn construction_errors() {
        assert_eq!(
            BasicAuth::builder().build().unwrap_err(),
            BasicUserError::NoUsers
        );
        assert!(matches!(
            BasicAuth::builder().user("a:b", "p").build(),
            Err(BasicUserError::InvalidUser(_))
        ));
        assert!(matches!(
            BasicAuth::builder().user("a", "").build(),
            Err(BasicUserError::InvalidPassword(_))
        ));
        assert!(matches!(
            BasicAuth::builder().user("a", "p").user("a", "q").build(),
            Err(BasicUserError::Duplicate(_))
        ));
    }
}
