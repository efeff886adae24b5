//! The DPoP proof checks, in the order of RFC 9449 §4.3.
//!
//! A proof is a compact JWS in the request's one `DPoP` header. Each check refuses with its
//! own [`ProofError`] (for logs; a client sees `invalid_dpop_proof` only):
//!
//! 1. exactly one `DPoP` header, at most 8 KiB ([`super::Dpop`] reads it);
//! 2. a well-formed JWS: three Base64url parts, a JSON object header and payload;
//! 3. `typ` is `dpop+jwt`;
//! 4. `alg` is on the allow-list (asymmetric only: never `none`, never HMAC), and agrees with
//!    the `jwk`;
//! 5. the `jwk` is a public key (no private member, no symmetric key; RSA of 2048 bits or
//!    more); `jku`, `x5u`, `x5c` and `kid` are ignored: the key is the `jwk`;
//! 6. the signature verifies with the `jwk`;
//! 7. `jti`, `htm`, `htu` and `iat` are present;
//! 8. `htm` is the request method;
//! 9. `htu` is the configured resource URL, compared as RFC 3986 normalised URIs without query
//!    and fragment ([`super::htu`]);
//! 10. the server nonce, when nonces are on ([`super::nonce`]);
//! 11. `iat` is within the accepted age of now, either way;
//! 12. `ath` is present and is the Base64url SHA-256 of the access token.
//!
//! The binding of the token to the key (`cnf.jkt`) and replay come after, in [`super::Dpop`].
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::dpop::{ProofError, check_proof_for_fuzzing};
//!
//! assert_eq!(check_proof_for_fuzzing("not a proof"), Err(ProofError::Malformed));
//! # }
//! ```

use std::borrow::Cow;

use http::Method;
use jsonwebtoken::Algorithm;

use super::{
    ath::AthCache,
    htu::Htu,
    keys::{CachedKey, KeyCache},
    thumbprint::{Jkt, Sha256},
};
use crate::jwt::{
    base64url,
    json::{self, Json},
    signature,
};

/// Why a DPoP proof is refused. Logged; the client sees `error="invalid_dpop_proof"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// No `DPoP` header.
    #[error("the request has no DPoP header: send one proof with a DPoP-bound token")]
    Missing,
    /// More than one `DPoP` header (RFC 9449 §4.3 check 1).
    #[error("the request has more than one DPoP header: send exactly one")]
    Repeated,
    /// The `DPoP` header is larger than 8 KiB.
    #[error("the DPoP header is larger than 8 KiB")]
    TooLarge,
    /// Not a compact JWS with a JSON object header and payload, or a required header
    /// parameter (`typ`, `alg`, `jwk`) is missing or repeated.
    #[error("the DPoP proof is not a well-formed JWT with typ, alg and jwk")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    /// `alg` is not on the allow-list (or is `none` or HMAC).
    #[error("the DPoP proof's alg is not accepted: use one the DPoP challenge's algs names")]
    Algorithm,
    /// The `jwk` is not a key of the type and curve `alg` names, or is not well formed.
    #[error("the DPoP proof's jwk does not fit its alg")]
    KeyMismatch,
    /// The `jwk` holds private or symmetric key material.
    #[error("the DPoP proof's jwk holds private key material: send the public key only")]
    PrivateKey,
    /// An RSA `jwk` of fewer than 2048 bits (or more than 8192).
    #[error("the DPoP proof's RSA key is shorter than 2048 bits")]
    WeakKey,
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    /// A required claim is missing or not of its type.
    #[error("the DPoP proof lacks the claim {0} (or it has the wrong type)")]
    MissingClaim(&'static str),
    /// `htm` is not the request method.
    #[error("the DPoP proof's htm is not the request method")]
    Method,
    /// `htu` is not the resource URL.
    #[error("the DPoP proof's htu is not this resource's URL")]
    Uri,
    /// The server nonce is missing or stale (RFC 9449 §9).
    #[error("the DPoP proof's nonce is missing or stale: retry with the DPoP-Nonce given")]
    Nonce,
    /// `iat` is too far in the past or the future.
    #[error("the DPoP proof's iat is too far from now: check the client's clock")]
    IssuedAt,
    /// `ath` is not the hash of the access token.
    #[error("the DPoP proof's ath is not the SHA-256 of the access token")]
    AccessTokenHash,
    /// The proof was accepted before (its `jti`, for its key).
    #[error("the DPoP proof was used before: make a new proof for each request")]
    Replayed,
}

/// A server-nonce check (RFC 9449 §8–9), run as check 10 of [`check`] ([`super::nonce`]).
pub(crate) trait NonceCheck: Send + Sync {
    /// Checks the proof's `nonce` claim (absent: `None`) at `now` (seconds since the epoch);
    /// `Ok(true)` when it is accepted but a fresh one should go with the answer.
    fn check(&self, nonce: Option<&str>, now: u64) -> Result<bool, ProofError>;
}

/// What the checks compare a proof with.
pub(crate) struct Expect<'a> {
    pub(crate) algorithms: &'a [Algorithm],
    pub(crate) method: &'a Method,
    pub(crate) htu: &'a Htu,
    pub(crate) token: &'a str,
    pub(crate) now: u64,
    pub(crate) max_age: u64,
    pub(crate) nonce: Option<&'a dyn NonceCheck>,
    /// The headers of earlier proofs ([`super::keys`]).
    pub(crate) keys: &'a KeyCache,
    /// The hashes of tokens checked before ([`super::ath`]).
    pub(crate) hashes: &'a AthCache,
}

/// A proof that passed every check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proof {
    /// The thumbprint of its key.
    pub(crate) jkt: Jkt,
    /// SHA-256 over the thumbprint and the `jti`: the replay key.
    pub(crate) replay: [u8; 32],
    /// Its `iat`.
    pub(crate) iat: u64,
    /// The time it was checked at (seconds since the epoch).
    pub(crate) now: u64,
    /// Its nonce is accepted, but a fresh one should go with the answer.
    pub(crate) renew_nonce: bool,
}

/// The largest payload decoded on the stack (a proof's is a few hundred bytes).
const STACK: usize = 512;

/// `part` Base64url-decoded as UTF-8, on the stack when it fits in `stack`.
fn decode<'b>(part: &str, stack: &'b mut [u8; STACK], heap: &'b mut Vec<u8>) -> Option<&'b str> {
    let len = base64url::decoded_len(part.len())?;
    let buf: &mut [u8] = if len <= STACK {
        &mut stack[..]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    let n = base64url::decode(part.as_bytes(), buf)?;
    std::str::from_utf8(&buf[..n]).ok()
}

/// Checks 2 to 5 on the header `header` (Base64url) of a proof not in the cache: a JSON object
/// with one `typ`, `alg` and `jwk` each and no `crit`, `typ`, `alg`, the `jwk`. A payload with
/// a repeated claim (`repeated`) is malformed too, and is refused first, as any malformed
/// part is refused before the header's checks.
fn read_header(header: &str, repeated: bool, expect: &Expect<'_>) -> Result<CachedKey, ProofError> {
    use ProofError::*;
    let (mut stack, mut heap) = ([0u8; STACK], Vec::new());
    let text = decode(header, &mut stack, &mut heap).ok_or(Malformed)?;
    let (mut typ, mut alg, mut jwk, mut crit) = (None, None, None, None);
    let mut repeated = repeated;
    json::object(text, |m| {
        let slot = match &*m.name() {
            "typ" => &mut typ,
            "alg" => &mut alg,
            "jwk" => &mut jwk,
            "crit" => &mut crit,
            _ => return, // jku, x5u, x5c, kid: ignored
        };
        repeated |= slot.replace(m.value).is_some();
    })
    .ok_or(Malformed)?;
    let (Some(typ), Some(alg), Some(Json::Object(jwk))) = (typ, alg, jwk) else {
        return Err(Malformed);
    };
    if repeated || crit.is_some() {
        return Err(Malformed);
    }
    // 3. typ.
    if !typ
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(Type);
    }
    // 4. alg: on the allow-list (which holds asymmetric algorithms only).
    let alg = alg
        .as_str()
        .and_then(|a| super::algorithm(&a))
        .filter(|a| expect.algorithms.contains(a))
        .ok_or(Algorithm)?;
    // 4–5. The jwk: public, asymmetric, of the type alg names.
    expect.keys.read(header, jwk, alg)
}

/// Checks the proof `value` (checks 2 to 12 of the [module documentation](self)).
pub(crate) fn check(value: &str, expect: &Expect<'_>) -> Result<Proof, ProofError> {
    use ProofError::*;
    // 2. A compact JWS.
    let mut parts = value.splitn(3, '.');
    let (Some(header), Some(payload), Some(sig)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed);
    };
    let message = &value[..header.len() + 1 + payload.len()];
    let (mut ps, mut ph) = ([0u8; STACK], Vec::new());
    let payload = decode(payload, &mut ps, &mut ph).ok_or(Malformed)?;
    let mut repeated = false;
    let mut claims: [Option<Json<'_>>; 6] = [None; 6];
    const NAMES: [&str; 6] = ["jti", "htm", "htu", "iat", "ath", "nonce"];
    json::object(payload, |m| {
        let i = match m.plain_name() {
            Some("jti") => 0,
            Some("htm") => 1,
            Some("htu") => 2,
            Some("iat") => 3,
            Some("ath") => 4,
            Some("nonce") => 5,
            Some(_) => return,
            // A name with an escape (rare): unescaped first.
            None => match NAMES.iter().position(|n| m.is(n)) {
                Some(i) => i,
                None => return,
            },
        };
        repeated |= claims[i].replace(m.value).is_some();
    })
    .ok_or(Malformed)?;
    // 2–5. The header: a client's proofs all have the same one, checked once ([`super::keys`]).
    let key = match expect.keys.find(header, expect.algorithms) {
        Some(_) if repeated => return Err(Malformed),
        Some(key) => key,
        None => read_header(header, repeated, expect)?,
    };
    // 6. The signature.
    let ok = signature::with_signature(sig, |s| key.key.verify(message.as_bytes(), s))
        .map_err(|_| Malformed)?;
    if !ok {
        return Err(Signature);
    }
    // 7. Required claims.
    let string = |i: usize, name: &'static str| -> Result<Cow<'_, str>, ProofError> {
        claims[i]
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or(MissingClaim(name))
    };
    let jti = string(0, "jti")?;
    let htm = string(1, "htm")?;
    let htu = string(2, "htu")?;
    let iat = claims[3]
        .and_then(|v| v.as_seconds())
        .ok_or(MissingClaim("iat"))?;
    // 8. htm.
    if *htm != *expect.method.as_str() {
        return Err(Method);
    }
    // 9. htu.
    if !expect.htu.matches(&htu) {
        return Err(Uri);
    }
    // 10. nonce.
    let mut renew_nonce = false;
    if let Some(nonce) = expect.nonce {
        let value = claims[5].and_then(|v| v.as_str());
        renew_nonce = nonce.check(value.as_deref(), expect.now)?;
    }
    // 11. iat.
    if iat.abs_diff(expect.now) > expect.max_age {
        return Err(IssuedAt);
    }
    // 12. ath.
    let ath = string(4, "ath")?;
    let mut hash = [0u8; 32];
    match base64url::decoded_len(ath.len()) {
        Some(32) if base64url::decode(ath.as_bytes(), &mut hash).is_some() => {}
        _ => return Err(AccessTokenHash),
    }
    if !expect.hashes.matches(expect.token, &hash) {
        return Err(AccessTokenHash);
    }
    let mut replay = Sha256::new();
    replay
        .update(key.jkt.as_bytes())
        .update(b"\0")
        .update(jti.as_bytes());
    Ok(Proof {
        jkt: key.jkt,
        replay: replay.finish(),
        iat,
        now: expect.now,
        renew_nonce,
    })
}

/// The caches of [`check_proof_for_fuzzing`]: shared by its calls, so that the fuzzer reaches
/// their hits too.
static FUZZ_KEYS: std::sync::OnceLock<KeyCache> = std::sync::OnceLock::new();
static FUZZ_HASHES: std::sync::OnceLock<AthCache> = std::sync::OnceLock::new();

/// Runs the checks on `proof` against fixed expectations (`POST https://mcp.example.com/mcp`,
/// the token `token`, now = `iat` of the proof, every algorithm): for the fuzz target; not
/// part of the API.
#[doc(hidden)]
pub fn check_proof_for_fuzzing(proof: &str) -> Result<(), ProofError> {
    let htu = Htu::new("https://mcp.example.com/mcp").ok_or(ProofError::Uri)?;
    let expect = Expect {
        algorithms: &super::ALL_ALGORITHMS,
        method: &Method::POST,
        htu: &htu,
        token: "token",
        now: 1_700_000_000,
        max_age: u64::MAX,
        nonce: None,
        keys: FUZZ_KEYS.get_or_init(KeyCache::new),
        hashes: FUZZ_HASHES.get_or_init(AthCache::new),
    };
    check(proof, &expect).map(|_| ())
}
