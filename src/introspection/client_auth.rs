//! How this server authenticates itself to the introspection endpoint.
//!
//! An introspection endpoint answers only clients it knows (RFC 7662 §2.1: otherwise anyone
//! could probe which tokens are live), so every call carries this server's own client
//! credentials, in one of three ways:
//!
//! - `client_secret_basic` (the default, RFC 6749 §2.3.1): `Authorization: Basic` over the
//!   client id and secret, each `application/x-www-form-urlencoded` **before** Base64. A secret
//!   with `:`, `%`, `+` or a space is sent as `%3A`, `%25`, `%2B` and `+`; servers decode it
//!   back. Sending it raw breaks exactly the secrets an authorization server generates with
//!   such characters.
//! - `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the form body.
//! - `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a short-lived assertion signed
//!   with a key of yours, whose public half the authorization server knows: `iss` and `sub` the
//!   client id, `aud` the endpoint (or an audience you set), a unique `jti`, `exp` a minute
//!   ahead. No shared secret is ever sent.
//!
//! `Debug` shows the method and the client id, never a secret or a key.
//!
//! ```
//! use mcp_server_auth::introspection::ClientAuth;
//!
//! let auth = ClientAuth::client_secret_basic("mcp-server", "s3cr:t+%");
//! assert_eq!(auth.method(), "client_secret_basic");
//! assert!(!format!("{auth:?}").contains("s3cr"));
//! ```

use std::{
    fmt::{self, Write as _},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::IntrospectionError;
use crate::jwt::Algorithm;

/// How long a `private_key_jwt` assertion is valid: long enough for one call, no longer.
const ASSERTION_LIFETIME_SECS: u64 = 60;

/// `client_assertion_type` for a JWT assertion (RFC 7523 §2.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A private key that signs `private_key_jwt` assertions (RFC 7523). `Debug` shows the
/// algorithm, the key id and the audience, never the key.
#[derive(Clone)]
pub struct SigningKey {
    key: Arc<EncodingKey>,
    alg: Algorithm,
    kid: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from its PEM (PKCS#8, or PKCS#1 for RSA), for `alg`: RS256/384/512 and
    /// PS256/384/512 take an RSA key, ES256/ES384 an EC key of that curve, EdDSA an Ed25519
    /// key. `kid` is put in the assertion's header, so that the authorization server picks the
    /// key among those it has for this client. HMAC algorithms are refused: that is
    /// `client_secret_jwt`, which shares the secret after all.
    pub fn from_pem(
        alg: Algorithm,
        pem: &[u8],
        kid: Option<&str>,
    ) -> Result<Self, IntrospectionError> {
        crate::jwt::install_crypto_provider().map_err(|_| IntrospectionError::NoCryptoBackend)?;
        use Algorithm as A;
        let key = match alg {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
                EncodingKey::from_rsa_pem(pem)
            }
            A::ES256 | A::ES384 => EncodingKey::from_ec_pem(pem),
            A::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => {
                return Err(IntrospectionError::SigningKey(
                    "HMAC algorithms are not accepted",
                ));
            }
        }
        .map_err(|_| {
            IntrospectionError::SigningKey("the PEM is not a private key for this algorithm")
        })?;
        Ok(Self {
            key: Arc::new(key),
            alg,
            kid: kid.map(str::to_owned),
            audience: None,
        })
    }

    /// The assertion's `aud` (default: the introspection endpoint's URL). Some authorization
    /// servers want their issuer identifier or their token endpoint instead.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// A fresh assertion for `client_id`, to be sent to `endpoint`.
    fn assertion(&self, client_id: &str, endpoint: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|e| format!("no randomness for the jti: {e}"))?;
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.audience.as_deref().unwrap_or(endpoint),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": jti,
        });
        let mut header = Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        // The error names what went wrong with the signing, never the key.
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("signing the client assertion failed: {e}"))
    }
}

#[derive(Clone)]
enum Method {
    Basic(String),
    Post(String),
    PrivateKeyJwt(SigningKey),
}

/// This server's client authentication at the introspection endpoint: a client id with a
/// secret ([`client_secret_basic`](Self::client_secret_basic), the default way, or
/// [`client_secret_post`](Self::client_secret_post)) or with a signing key
/// ([`private_key_jwt`](Self::private_key_jwt)). `Debug` never shows the secret or the key.
#[derive(Clone)]
pub struct ClientAuth {
    client_id: String,
    method: Method,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientAuth");
        d.field("method", &self.method())
            .field("client_id", &self.client_id);
        if let Method::PrivateKeyJwt(key) = &self.method {
            d.field("key", key);
        }
        d.finish_non_exhaustive()
    }
}

impl ClientAuth {
    /// HTTP Basic with the client id and secret, each form-urlencoded first (RFC 6749 §2.3.1).
    pub fn client_secret_basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::Basic(secret.into()),
        }
    }

    /// The client id and secret as `client_id` and `client_secret` in the form body.
    pub fn client_secret_post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::Post(secret.into()),
        }
    }

    /// A signed assertion (RFC 7523 §2.2) for each call, with `key`.
    pub fn private_key_jwt(client_id: impl Into<String>, key: SigningKey) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::PrivateKeyJwt(key),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The method's registered name (RFC 7591 §2): `client_secret_basic`,
    /// `client_secret_post` or `private_key_jwt`.
    pub fn method(&self) -> &'static str {
        match self.method {
            Method::Basic(_) => "client_secret_basic",
            Method::Post(_) => "client_secret_post",
            Method::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }

    pub(super) fn check(&self) -> Result<(), IntrospectionError> {
        let secret_empty = match &self.method {
            Method::Basic(s) | Method::Post(s) => s.is_empty(),
            Method::PrivateKeyJwt(_) => false,
        };
        if self.client_id.is_empty() || secret_empty {
            return Err(IntrospectionError::ClientAuth);
        }
        Ok(())
    }

    /// Adds these credentials to a call to `endpoint`: form fields appended to `form`, and the
    /// `Authorization` field value to send, if any.
    pub(super) fn apply(
        &self,
        endpoint: &str,
        form: &mut String,
    ) -> Result<Option<String>, String> {
        match &self.method {
            Method::Basic(secret) => {
                let mut pair = String::new();
                form_encode(&self.client_id, &mut pair);
                pair.push(':');
                form_encode(secret, &mut pair);
                Ok(Some(format!("Basic {}", STANDARD.encode(pair))))
            }
            Method::Post(secret) => {
                form_field(form, "client_id", &self.client_id);
                form_field(form, "client_secret", secret);
                Ok(None)
            }
            Method::PrivateKeyJwt(key) => {
                let assertion = key.assertion(&self.client_id, endpoint)?;
                form_field(form, "client_assertion_type", JWT_BEARER);
                form_field(form, "client_assertion", &assertion);
                Ok(None)
            }
        }
    }
}

/// Appends `name=value` (form-urlencoded) to `form`, after a `&` if it is not empty.
pub(super) fn form_field(form: &mut String, name: &str, value: &str) {
    if !form.is_empty() {
        form.push('&');
    }
    form_encode(name, form);
    form.push('=');
    form_encode(value, form);
}

/// `application/x-www-form-urlencoded` serialization of `text` (the URL Standard's
/// urlencoded serializer): ASCII alphanumerics and `*-._` as they are, space as `+`, every
/// other byte of the UTF-8 as `%XX`.
pub(super) fn form_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> String {
        let mut out = String::new();
        form_encode(text, &mut out);
        out
    }

    #[test]
    fn form_encoding_escapes_what_basic_would_confuse() {
        assert_eq!(encoded("a b+c:d%e"), "a+b%2Bc%3Ad%25e");
        assert_eq!(encoded("é"), "%C3%A9");
        assert_eq!(encoded("A-z_0.9*"), "A-z_0.9*");
        let auth = ClientAuth::client_secret_basic("id:1", "p:%+ é");
        let header = auth
            .apply("https://as/introspect", &mut String::new())
            .unwrap();
        let decoded = STANDARD
            .decode(header.unwrap().strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"id%3A1:p%3A%25%2B+%C3%A9");
    }

    #[test]
    fn post_puts_the_credentials_in_the_form() {
        let auth = ClientAuth::client_secret_post("id", "s&=");
        let mut form = "token=t".to_owned();
        assert_eq!(auth.apply("https://as/i", &mut form).unwrap(), None);
        assert_eq!(form, "token=t&client_id=id&client_secret=s%26%3D");
    }

    #[test]
    fn an_empty_client_id_or_secret_is_refused() {
        assert!(ClientAuth::client_secret_basic("", "s").check().is_err());
        assert!(ClientAuth::client_secret_post("id", "").check().is_err());
        assert!(ClientAuth::client_secret_basic("id", "s").check().is_ok());
    }
}
