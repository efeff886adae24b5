//! Two verifiers as one: [`VerifierExt::or`].

use std::sync::Arc;

use super::{AuthRequest, Presented, Recall, Schemes, Verdict, Verifier};

/// Combinators for verifiers.
pub trait VerifierExt: Verifier + Sized {
    /// Accepts what either `self` or `other` accepts; `self` is asked first.
    fn or<W: Verifier>(self, other: W) -> Or<Self, W> {
        Or {
            first: Arc::new(self),
            second: Arc::new(other),
        }
    }
}

impl<V: Verifier> VerifierExt for V {}

/// Accepts what either of two verifiers accepts. Built by [`VerifierExt::or`].
///
/// The first is asked first; the second is asked when the first refuses at once. When the first
/// must wait (it fetches keys), the second is asked at once too, since the request is no longer
/// at hand once the first is done; the first's acceptance still wins.
#[derive(Debug)]
pub struct Or<A, B> {
    first: Arc<A>,
    second: Arc<B>,
}

impl<A, B> Clone for Or<A, B> {
    fn clone(&self) -> Self {
        Self {
            first: self.first.clone(),
            second: self.second.clone(),
        }
    }
}

impl<A, B> Or<A, B> {
    /// The first verifier.
    pub fn first(&self) -> &A {
        &self.first
    }
    /// The second verifier.
    pub fn second(&self) -> &B {
        &self.second
    }
}

impl<A: Verifier, B: Verifier> Verifier for Or<A, B> {
    fn schemes(&self) -> Schemes {
        self.first.schemes().union(self.second.schemes())
    }

    /// The first's answer; the second's only when the first would refuse, as `verify` would
    /// then ask the second (and the first's acceptance wins).
    fn recall(&self, presented: &Presented<'_>) -> Recall {
        match self.first.recall(presented) {
            Recall::Refused => self.second.recall(presented),
            known => known,
        }
    }

    fn verify(&self, request: &AuthRequest<'_>) -> Verdict {
        match self.first.verify(request) {
            Verdict::Ready(Ok(info)) => Verdict::Ready(Ok(info)),
            Verdict::Ready(Err(e)) => match self.second.verify(request) {
                Verdict::Ready(r) => Verdict::Ready(r.map_err(|e2| e.prefer(e2))),
                Verdict::Pending(f) => {
                    Verdict::Pending(Box::pin(async move { f.await.map_err(|e2| e.prefer(e2)) }))
                }
            },
            Verdict::Pending(first) => {
                let second = self.second.verify(request);
                Verdict::Pending(Box::pin(async move {
                    match first.await {
                        Ok(info) => Ok(info),
                        Err(e) => second.resolve().await.map_err(|e2| e.prefer(e2)),
                    }
                }))
            }
        }
    }
}
