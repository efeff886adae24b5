//! The check of one token after the verified-token cache: header, key, signature, claims, and
//! the identity that goes into the cache.
//!
//! The order is the one that spends least on a token that cannot be valid: the header is
//! recognised by its exact text when a token with the same header was accepted before (else
//! read and checked: `alg` on the allow-list, `typ`, no `crit`); a token whose key is not at
//! hand is judged on its claims, read unverified, before it may start a key fetch; only then is
//! the signature checked, and the claims read for good.

use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Algorithm, Ask, Inner, JwtKey, Lookup,
    claims::{self, Claims, STACK_CLAIMS_BYTES},
    header::{self, Header, STACK_HEADER_BYTES},
    keys::Candidates,
    segment::{self, Scratch, Segments},
    signature,
};
use crate::{
    identity::{AuthInfo, AuthMethod, TokenIdentity, TokenPart},
    secret::SecretTag,
    verifier::{Invalid, Rejection, Verdict},
};

pub(super) fn refuse(reason: Invalid) -> Rejection {
    Rejection::Invalid(reason)
}

impl Inner {
    /// Header checks that need no key: algorithm allow-list, `typ`, `crit`.
    fn check_header(&self, header: &Header<'_>) -> Result<(), Rejection> {
        if !self.algorithms.contains(&header.alg) {
            return Err(refuse(Invalid::Unacceptable));
        }
        if header.crit {
            // We understand no critical extension (RFC 7515 §4.1.11).
            return Err(refuse(Invalid::Unacceptable));
        }
        let typ_ok = match header.typ.as_deref() {
            None => !self.strict,
            Some(t) => {
                // A media type: case-insensitive, `application/` optional (RFC 7515 §4.1.9).
                let t = match t.get(..12) {
                    Some(p) if p.eq_ignore_ascii_case("application/") => &t[12..],
                    _ => t,
                };
                t.eq_ignore_ascii_case("at+jwt") || (!self.strict && t.eq_ignore_ascii_case("jwt"))
            }
        };
        if typ_ok {
            Ok(())
        } else {
            Err(refuse(Invalid::Unacceptable))
        }
    }

    /// Looks the key up among the keys of the issuer(s) that may have signed `token`.
    ///
    /// With one trusted issuer, that is its keys. With several, the token's own (not yet
    /// verified) `iss` names the one issuer whose keys may verify it: key ids are only unique
    /// within an issuer. The signature and `iss` are verified afterwards as usual.
    fn find_key(&self, token: &str, kid: Option<&str>, alg: Algorithm, ask: Ask) -> KeyFound {
        let only = if self.issuers.len() > 1 {
            let mut scratch = Scratch::<STACK_CLAIMS_BYTES>::new();
            let iss = claims::payload(token)
                .and_then(|payload| Claims::read(payload, &mut scratch))
                .and_then(|claims| claims.str("iss"));
            match iss.and_then(|iss| self.issuers.iter().position(|i| *i.issuer == *iss)) {
                Some(i) => Some(i),
                None => return KeyFound::WrongIssuer,
            }
        } else {
            None
        };
        let mut not_at_hand = false;
        let mut unavailable = None;
        let mut refreshes = Vec::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            if only.is_some_and(|only| only != i) {
                continue;
            }
            match issuer.source.lookup(kid, alg, ask) {
                Lookup::Found(keys) => return KeyFound::Keys(i, keys),
                Lookup::Missing => {}
                Lookup::NotAtHand => not_at_hand = true,
                Lookup::Unavailable(d) => unavailable = Some(d),
                Lookup::Refreshing(f) => refreshes.push(f),
            }
        }
        if !refreshes.is_empty() {
            KeyFound::Refreshing(refreshes)
        } else if not_at_hand {
            KeyFound::NotAtHand
        } else if let Some(d) = unavailable {
            KeyFound::Unavailable(d)
        } else {
            KeyFound::Missing
        }
    }

    /// Verifies the signature with one of `keys` of issuer `i`, then the claims, and builds the
    /// identity. Returns it with the key that verified it.
    fn finish(
        &self,
        segments: Segments<'_>,
        i: usize,
        keys: Candidates,
    ) -> Result<(AuthInfo, Arc<JwtKey>), Rejection> {
        let issuer = &self.issuers[i];
        // The header was read and checked already; verify the signature over the signing input
        // with the key's one algorithm, then read the claims once (jsonwebtoken's `decode` would
        // read the header twice more and the claims twice).
        let malformed = || refuse(Invalid::Malformed);
        // The payload is decoded first (a token of more than three segments fails here, as
        // malformed), read as JSON only once the signature verifies. Its buffer becomes the
        // identity's.
        let text = segment::decode_string(segments.payload).ok_or_else(malformed)?;
        let json = text.as_str();
        // Decoded once (on the stack) for all the candidate keys; each key was parsed once, when
        // it was added, into the backend's verification key for its one algorithm.
        let message = segments.message.as_bytes();
        let key = signature::with_signature(segments.signature, |signature| {
            keys.into_iter().find(|key| key.verify(message, signature))
        })
        .map_err(|_| malformed())?
        .ok_or(refuse(Invalid::BadSignature))?;
        let claims = Claims::parse(json).ok_or_else(malformed)?;
        let exp = self.check_claims(&issuer.issuer, &claims)?;
        // A check of your own sees the claims as a map; the identity then keeps that map.
        let map = match &self.check {
            Some(check) => {
                let map = claims.to_map();
                check(&map).map_err(|reason| refuse(Invalid::Custom(reason)))?;
                Some(map)
            }
            None => None,
        };
        let (method, subject, client_id) = match &self.identity {
            None => {
                let client_id = claims.str("client_id").or_else(|| claims.str("azp"));
                let subject = match (claims.str("sub"), &client_id) {
                    (Some(sub), _) => sub,
                    (None, Some(client)) => client.clone(),
                    (None, None) => return Err(refuse(Invalid::Claims)),
                };
                (AuthMethod::Jwt, subject, client_id)
            }
            Some(identity) => {
                let first = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| claims.str(n).filter(|v| !v.is_empty()))
                };
                let subject = first(identity.subject).ok_or(refuse(Invalid::Claims))?;
                (identity.method, subject, first(identity.client_id))
            }
        };
        let cnf = claims.binding().map_err(refuse)?;
        let (jkt, x5t) = (cnf.jkt.map(Into::into), cnf.x5t.map(Into::into));
        let scopes = self.scopes(&claims);
        let subject = TokenPart::of(json, subject);
        let client_id = client_id.map(|c| TokenPart::of(json, c));
        let info = AuthInfo::from_token(TokenIdentity {
            jkt,
            x5t,
            method,
            subject,
            client_id,
            issuer: issuer.issuer.clone(),
            scopes,
            expires_at: std::time::UNIX_EPOCH + Duration::from_secs(exp),
            claims_json: text,
            claims_map: map,
        });
        Ok((info, key))
    }

    /// The whole check, after the cache: header, key, signature, claims; caches the result.
    /// `tag` is the token's cache key, when the cache is on (computed once per request).
    ///
    /// A token whose key is not at hand is judged on its claims, read unverified, before it may
    /// start a fetch: one that no key could make valid never spends the fetch budget.
    pub(super) fn verify_uncached(
        self: &Arc<Self>,
        token: &str,
        tag: Option<SecretTag>,
    ) -> Verdict {
        let Some(segments) = Segments::split(token) else {
            return Verdict::Ready(Err(refuse(Invalid::Malformed)));
        };
        let mut scratch = Scratch::<STACK_HEADER_BYTES>::new();
        let (alg, kid, known) = match self.headers.find(segments.header) {
            Some((alg, kid)) => (alg, kid.map(Cow::Borrowed), true),
            None => {
                let Ok(header) = header::read(segments.header, &mut scratch) else {
                    return Verdict::Ready(Err(refuse(Invalid::Malformed)));
                };
                if let Err(e) = self.check_header(&header) {
                    return Verdict::Ready(Err(e));
                }
                (header.alg, header.kid, false)
            }
        };
        let kid = kid.as_deref();
        let found = self.find_key(token, kid, alg, Ask::AtHand);
        if !matches!(found, KeyFound::Keys(..))
            && let Some(refusal) = self.refuse_unverified(token)
        {
            return Verdict::Ready(Err(refusal));
        }
        let found = match found {
            KeyFound::NotAtHand => {
                let asked = Instant::now();
                match self.find_key(token, kid, alg, Ask::MayFetch) {
                    KeyFound::Refreshing(refreshes) => {
                        let this = self.clone();
                        let token = token.to_owned();
                        let kid = kid.map(str::to_owned);
                        return Verdict::Pending(Box::pin(async move {
                            futures_util::future::join_all(refreshes).await;
                            // Look again, without starting another fetch.
                            let again = Ask::AfterFetch { asked };
                            let found = this.find_key(&token, kid.as_deref(), alg, again);
                            match Segments::split(&token) {
                                Some(segments) => this.settle(segments, tag, found),
                                None => Err(refuse(Invalid::Malformed)), // split once already
                            }
                        }));
                    }
                    found => found,
                }
            }
            found => found,
        };
        let verdict = self.settle(segments, tag, found);
        if !known && verdict.is_ok() {
            self.headers.remember(segments.header, alg, kid);
        }
        Verdict::Ready(verdict)
    }

    /// The verdict once the key lookup is over.
    fn settle(
        &self,
        segments: Segments<'_>,
        tag: Option<SecretTag>,
        found: KeyFound,
    ) -> Result<AuthInfo, Rejection> {
        match found {
            KeyFound::Keys(i, keys) => self.finish_and_cache(segments, tag, i, keys),
            KeyFound::WrongIssuer => Err(refuse(Invalid::WrongIssuer)),
            KeyFound::Missing => Err(refuse(Invalid::UnknownKey)),
            KeyFound::Unavailable(retry_after) => Err(Rejection::Unavailable { retry_after }),
            // Not returned after a fetch; fail closed (and soon) if it ever were.
            KeyFound::NotAtHand | KeyFound::Refreshing(_) => Err(Rejection::Unavailable {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    fn finish_and_cache(
        &self,
        segments: Segments<'_>,
        tag: Option<SecretTag>,
        i: usize,
        keys: Candidates,
    ) -> Result<AuthInfo, Rejection> {
        let (info, key) = self.finish(segments, i, keys)?;
        if let (Some(cache), Some(tag)) = (&self.cache, tag) {
            cache.insert(tag, info.clone(), key);
        }
        Ok(info)
    }
}

pub(super) enum KeyFound {
    Keys(usize, Candidates),
    /// Several issuers are trusted and the token names none of them.
    WrongIssuer,
    Missing,
    NotAtHand,
    Unavailable(Duration),
    Refreshing(Vec<futures_util::future::BoxFuture<'static, ()>>),
}

/// A verified-token cache lookup.
pub(super) enum Cached {
    Hit(AuthInfo),
    /// Not cached: the token's cache key, when the cache is on (computed once per request).
    Miss(Option<SecretTag>),
}

impl Inner {
    /// Looks `token` up in the verified-token cache.
    /// `tag` gives the token's tag when the caller has it already (asked only with the cache on).
    pub(super) fn cached_as(&self, token: &str, tag: impl FnOnce() -> Option<SecretTag>) -> Cached {
        let Some(cache) = &self.cache else {
            return Cached::Miss(None);
        };
        let tag = tag().unwrap_or_else(|| cache.tag(token));
        match cache.get(&tag) {
            Some(info) => Cached::Hit(info),
            None => Cached::Miss(Some(tag)),
        }
    }
}
