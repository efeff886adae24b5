//! JWK SHA-256 thumbprints (RFC 7638), the `jkt` a DPoP-bound token carries (RFC 9449 §6),
//! and the SHA-256 of the crypto backend already in the tree.
//!
//! The thumbprint hashes the key's required members only, in lexicographic order, with no
//! whitespace (RFC 7638 §3.2): `{"crv","kty","x","y"}` for EC, `{"crv","kty","x"}` for OKP,
//! `{"e","kty","n"}` for RSA. The member values are Base64url text (checked before) and curve
//! names, so nothing needs escaping; the JSON is fed to the hash piece by piece, never built.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::dpop::jwk_thumbprint; // for tests and tools; not part of the API
//!
//! // RFC 7638 §3.1's example key.
//! let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
//! assert_eq!(
//!     jwk_thumbprint("RSA", &[("e", "AQAB"), ("n", n)]),
//!     "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
//! );
//! # }
//! ```

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

/// A JWK SHA-256 thumbprint, Base64url (43 characters).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jkt([u8; 43]);

impl Jkt {
    /// The thumbprint of a SHA-256 digest.
    pub(crate) fn from_digest(digest: &[u8; 32]) -> Self {
        let mut out = [0u8; 43];
        // 32 bytes are always 43 characters unpadded.
        let _ = URL_SAFE_NO_PAD.encode_slice(digest, &mut out);
        Self(out)
    }

    /// The text, as bytes (Base64url, ASCII).
    pub(crate) fn as_bytes(&self) -> &[u8; 43] {
        &self.0
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // Base64url is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Jkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incremental SHA-256 (aws-lc-rs, else `sha2`).
pub(crate) struct Sha256(backend::Context);

#[cfg(feature = "aws-lc-rs")]
mod backend {
    pub(super) use aws_lc_rs::digest::Context;
    pub(super) fn new() -> Context {
        Context::new(&aws_lc_rs::digest::SHA256)
    }
    pub(super) fn finish(c: Context) -> [u8; 32] {
        c.finish().as_ref().try_into().unwrap_or_default()
    }
}

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
mod backend {
    use sha2::Digest as _;
    pub(super) struct Context(sha2::Sha256);
    impl Context {
        pub(super) fn update(&mut self, data: &[u8]) {
            self.0.update(data);
        }
    }
    pub(super) fn new() -> Context {
        Context(sha2::Sha256::new())
    }
    pub(super) fn finish(c: Context) -> [u8; 32] {
        c.0.finalize().into()
    }
}

impl Sha256 {
    pub(crate) fn new() -> Self {
        Self(backend::new())
    }
    pub(crate) fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }
    pub(crate) fn finish(self) -> [u8; 32] {
        backend::finish(self.0)
    }
    /// The digest of `data`.
    pub(crate) fn digest(data: &[u8]) -> [u8; 32] {
        let mut h = Self::new();
        h.update(data);
        h.finish()
    }
}

/// The RFC 7638 thumbprint of a key of type `kty` whose other required members are `members`
/// (name, value), in lexicographic order of the name once `kty` is placed among them.
pub(crate) fn thumbprint(kty: &str, members: &[(&str, &str)]) -> Jkt {
    let mut h = Sha256::new();
    let mut first = true;
    let mut put = |h: &mut Sha256, name: &str, value: &str| {
        h.update(if first { b"{\"" } else { b",\"" });
        first = false;
        h.update(name.as_bytes())
            .update(b"\":\"")
            .update(value.as_bytes())
            .update(b"\"");
    };
    let mut kty_done = false;
    for (name, value) in members {
        if !kty_done && *name > "kty" {
            put(&mut h, "kty", kty);
            kty_done = true;
        }
        put(&mut h, name, value);
    }
    if !kty_done {
        put(&mut h, "kty", kty);
    }
    h.update(b"}");
    Jkt::from_digest(&h.finish())
}

/// The RFC 7638 thumbprint as text: for tests and tools (see the module example).
pub fn jwk_thumbprint(kty: &str, members: &[(&str, &str)]) -> String {
    thumbprint(kty, members).as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_hashes_the_required_members_in_order() {
        // RFC 7638 §3.2's canonical JSON for an EC key, hashed directly.
        let json = r#"{"crv":"P-256","kty":"EC","x":"AA","y":"BB"}"#;
        let want = Jkt::from_digest(&Sha256::digest(json.as_bytes()));
        let got = thumbprint("EC", &[("crv", "P-256"), ("x", "AA"), ("y", "BB")]);
        assert_eq!(got, want);
        let okp = r#"{"crv":"Ed25519","kty":"OKP","x":"AA"}"#;
        let want = Jkt::from_digest(&Sha256::digest(okp.as_bytes()));
        assert_eq!(thumbprint("OKP", &[("crv", "Ed25519"), ("x", "AA")]), want);
    }
}
