//! [`Dpop`]: the verifier that checks DPoP proofs and token binding around another verifier.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::{HeaderMap, HeaderName};

use super::{
    DpopOptions, Mode, ProofError,
    ath::AthCache,
    keys::KeyCache,
    proof::{self, Expect, NonceCheck, Proof},
    replay,
};
use crate::{
    credentials::Scheme,
    identity::AuthInfo,
    rejection::{Invalid, Rejection},
    store::{MemoryStore, Store},
    verifier::{AuthRequest, Credentials, Presented, Recall, Schemes, Verdict, Verifier},
};

/// The largest `DPoP` header accepted, in bytes.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// How soon a client may retry when the replay store cannot answer.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Checks DPoP proofs (RFC 9449) in front of `V`, which checks the tokens (JWT, introspection,
/// your own). See the [module documentation](super).
pub struct Dpop<V, S = MemoryStore> {
    inner: V,
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    options: DpopOptions,
    store: S,
    keys: KeyCache,
    hashes: AthCache,
}

impl<V: std::fmt::Debug, S> std::fmt::Debug for Dpop<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("inner", &self.inner)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl<V: Clone, S> Clone for Dpop<V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<V: Verifier> Dpop<V> {
    /// DPoP around `inner`, proofs remembered in this process's memory (one replica).
    pub fn new(inner: V, options: DpopOptions) -> Self {
        Self::with_store(inner, options, MemoryStore::new())
    }
}

impl<V: Verifier, S: Store> Dpop<V, S> {
    /// DPoP around `inner`, proofs remembered in `store`: a [`RedisStore`] shared by every
    /// replica, so that a proof accepted at one is refused at the others.
    ///
    /// [`RedisStore`]: crate::store::RedisStore
    pub fn with_store(inner: V, options: DpopOptions, store: S) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                options,
                store,
                keys: KeyCache::new(),
                hashes: AthCache::new(),
            }),
        }
    }

    /// The verifier of the tokens.
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// The options.
    pub fn options(&self) -> &DpopOptions {
        &self.shared.options
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `DPoP` request header's name.
const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The request's one `DPoP` header (RFC 9449 §4.3 check 1).
fn proof_header(headers: &HeaderMap) -> Result<&str, ProofError> {
    let mut all = headers.get_all(DPOP).iter();
    let value = all.next().ok_or(ProofError::Missing)?;
    if all.next().is_some() {
        return Err(ProofError::Repeated);
    }
    if value.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge);
    }
    value.to_str().map_err(|_| ProofError::Malformed)
}

fn refuse_proof(why: ProofError) -> Rejection {
    tracing::debug!(reason = %why, "DPoP proof refused");
    Rejection::Invalid(Invalid::DpopProof)
}

impl<S: Store> Shared<S> {
    /// Checks the proof of a request presenting `token` with the `DPoP` scheme.
    fn check_proof(&self, request: &AuthRequest<'_>, token: &str) -> Result<Proof, Rejection> {
        let value = proof_header(request.headers()).map_err(refuse_proof)?;
        let o = &self.options;
        let now = now_secs();
        let expect = Expect {
            algorithms: &o.algorithms,
            method: request.method(),
            htu: &o.htu,
            token,
            now,
            max_age: o.max_age.as_secs(),
            nonce: o.nonces.as_deref().map(|n| n as &dyn NonceCheck),
            keys: &self.keys,
            hashes: &self.hashes,
        };
        proof::check(value, &expect).map_err(|why| match (why, &o.nonces) {
            // RFC 9449 §9: ask for a proof with this server's nonce.
            (ProofError::Nonce, Some(nonces)) => {
                tracing::debug!(reason = %why, "DPoP proof refused");
                Rejection::UseDpopNonce {
                    nonce: nonces.issue(now),
                }
            }
            _ => refuse_proof(why),
        })
    }

    /// `info`, with a fresh nonce for the answer when the proof's is from the previous bucket.
    fn renew(&self, info: AuthInfo, proof: &Proof) -> AuthInfo {
        match &self.options.nonces {
            Some(nonces) if proof.renew_nonce => info.with_dpop_nonce(nonces.issue(now_secs())),
            _ => info,
        }
    }

    /// The binding (`cnf.jkt` is the proof key's thumbprint, RFC 9449 §6–7), then replay.
    fn bind(&self, info: AuthInfo, proof: &Proof) -> Binding<S> {
        if info.dpop_jkt().map(str::as_bytes) != Some(proof.jkt.as_bytes()) {
            tracing::debug!("DPoP: the token is not bound to the proof's key");
            return Binding::Done(Err(Rejection::Invalid(Invalid::Binding)));
        }
        let info = self.renew(info, proof);
        // The time of the proof check: a store's entry may only outlive the proof's acceptance.
        let ttl = replay::ttl(proof, proof.now, self.options.max_age.as_secs());
        let mut marking = self.store.set_if_absent(&replay::key(proof), ttl);
        // The memory store answers at once: no box, no task.
        match Pin::new(&mut marking).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(answer) => Binding::Done(accept(info, answer)),
            Poll::Pending => Binding::Marking(info, marking),
        }
    }
}

enum Binding<S: Store> {
    Done(Result<AuthInfo, Rejection>),
    Marking(AuthInfo, S::SetIfAbsent),
}

/// The verdict once the store has answered whether the proof is new.
fn accept(
    info: AuthInfo,
    answer: Result<bool, crate::store::StoreError>,
) -> Result<AuthInfo, Rejection> {
    match answer {
        Ok(true) => Ok(info),
        Ok(false) => Err(refuse_proof(ProofError::Replayed)),
        Err(e) => {
            tracing::error!(error = %e, "DPoP: the replay store cannot answer; the request is answered 503");
            Err(Rejection::Unavailable {
                retry_after: STORE_RETRY,
            })
        }
    }
}

impl<V: Verifier, S: Store> Verifier for Dpop<V, S> {
    fn schemes(&self) -> Schemes {
        let inner = self.inner.schemes();
        let dpop = || Schemes::dpop_with_algorithms(self.shared.options.algorithm_names());
        match self.shared.options.mode {
            Mode::Off => inner,
            Mode::Allowed => inner.union(dpop()),
            Mode::Required => inner.without_bearer().union(dpop()),
        }
    }

    /// A DPoP token: its proof must be checked on every request. Other credentials: refused in
    /// `required` mode, else the inner verifier's answer (the layer does not admit an identity
    /// bound to a key by recall, so a downgrade still goes the whole way and is refused there).
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        match (self.shared.options.mode, presented.scheme()) {
            (Mode::Off, _) => self.inner.recall(presented),
            (_, Scheme::DPoP) => Recall::Unsure,
            (Mode::Required, _) => Recall::Refused,
            (Mode::Allowed, _) => self.inner.recall(presented),
        }
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        let shared = &self.shared;
        let token = match (shared.options.mode, request.credentials()) {
            (Mode::Off, _) => return self.inner.verify(request),
            (_, Credentials::DPoP(token)) => *token,
            // Only DPoP-bound tokens with their proofs: anything else is not this verifier's (a
            // verifier beside it may accept a bearer token of its own).
            (Mode::Required, _) => return Verdict::Ready(Err(Rejection::NoCredentials)),
            // A bound token presented otherwise is a downgrade (RFC 9449 §7.2): refused, whatever
            // the inner verifier (the crate's own refuse it themselves). Only the key binding
            // is this wrapper's: a certificate binding (`cnf.x5t#S256`) is compared by a
            // `CertificateBound` inside it, or refused by the token verifier it would wrap
            // (`EnvConfig` puts the certificate check inside the DPoP one).
            _ => {
                let key_only = request.with_certificate_checked();
                return key_only.refuse_unproven(self.inner.verify(request));
            }
        };
        let proof = match shared.check_proof(request, token) {
            Ok(proof) => proof,
            Err(rejection) => return Verdict::Ready(Err(rejection)),
        };
        match self.inner.verify(&request.with_proven_token(token)) {
            Verdict::Ready(Err(e)) => Verdict::Ready(Err(e)),
            Verdict::Ready(Ok(info)) => match shared.bind(info, &proof) {
                Binding::Done(verdict) => Verdict::Ready(verdict),
                Binding::Marking(info, marking) => {
                    Verdict::Pending(Box::pin(async move { accept(info, marking.await) }))
                }
            },
            Verdict::Pending(fut) => {
                let shared = shared.clone();
                Verdict::Pending(Box::pin(async move {
                    match shared.bind(fut.await?, &proof) {
                        Binding::Done(verdict) => verdict,
                        Binding::Marking(info, marking) => accept(info, marking.await),
                    }
                }))
            }
        }
    }
}
