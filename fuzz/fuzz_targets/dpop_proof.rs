//! Arbitrary text → the DPoP proof checks (RFC 9449 §4.3) and the `htu` normalisation
//! (RFC 3986 §6.2.2). The checks never panic; an accepted proof is a three-part compact JWS;
//! a proof checked again (its header and key from the proof-header cache, its `ath` from the
//! token-hash cache) gets the same verdict;
//! the normal form of a URI is a fixed point, and matches the URI it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_server_auth::dpop::{check_proof_for_fuzzing, normalize_htu};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let first = check_proof_for_fuzzing(input);
    if first.is_ok() {
        assert_eq!(input.split('.').count(), 3, "{input:?}");
    }
    // The second time, its header and `ath` may come from the caches: the same verdict.
    assert_eq!(check_proof_for_fuzzing(input), first, "{input:?}");
    if let Some(normal) = normalize_htu(input) {
        assert_eq!(normalize_htu(&normal).as_deref(), Some(normal.as_str()), "{input:?}");
        assert!(normal.is_ascii() && !normal.contains(['?', '#']));
        assert!(normal.contains("://"));
    }
});
