//! Replay protection (RFC 9449 §11.1): a proof is accepted once.
//!
//! Once every other check has passed (proof, token, binding), the proof's replay key is set in
//! the [`Store`] with set-if-absent: the first request with that proof marks it, and any other
//! (at this replica or, with a shared store, at another) finds it marked and is refused. So two
//! identical proofs sent at once get one acceptance between them. The key is `dpop:` and the
//! SHA-256 of the key's thumbprint and the `jti` (fixed size, whatever the `jti`); it lives for
//! as long as the proof's `iat` could still be accepted, `iat` + the accepted age − now, plus a
//! few seconds for clocks that differ between replicas. A proof dated in the future is kept
//! that much longer. A store that cannot answer refuses the request with `503` (fail closed).

use std::time::Duration;

use super::proof::Proof;

/// Added to each entry's lifetime, for replicas whose clocks differ by a few seconds.
pub(crate) const CLOCK_SLACK_SECS: u64 = 5;

/// The store key of `proof`.
pub(crate) fn key(proof: &Proof) -> [u8; 37] {
    let mut key = [0u8; 37];
    key[..5].copy_from_slice(b"dpop:");
    key[5..].copy_from_slice(&proof.replay);
    key
}

/// How long the entry of `proof` must live, at `now`, when proofs are accepted up to
/// `max_age` seconds from now.
pub(crate) fn ttl(proof: &Proof, now: u64, max_age: u64) -> Duration {
    let until = proof.iat.saturating_add(max_age);
    Duration::from_secs(until.saturating_sub(now).saturating_add(CLOCK_SLACK_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpop::thumbprint::Jkt;

    #[test]
    fn a_proof_from_the_future_is_remembered_until_it_can_no_longer_be_accepted() {
        let proof = Proof {
            jkt: Jkt::from_digest(&[0; 32]),
            replay: [7; 32],
            iat: 1_000 + 300,
            now: 1_000,
            renew_nonce: false,
        };
        // Accepted until iat + 300 = now + 600.
        assert_eq!(ttl(&proof, 1_000, 300), Duration::from_secs(600 + 5));
        let old = Proof {
            iat: 1_000 - 300,
            ..proof
        };
        assert_eq!(ttl(&old, 1_000, 300), Duration::from_secs(5));
        assert_eq!(&key(&proof)[..5], b"dpop:");
        assert_eq!(key(&proof).len(), 37);
    }
}
