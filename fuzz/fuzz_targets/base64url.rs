//! Arbitrary bytes → the token reader's Base64url decoder, differentially against the `base64`
//! crate's `URL_SAFE_NO_PAD`: both must accept the same strings (no padding, the URL-safe
//! alphabet, zero trailing bits) and decode them to the same bytes.
#![no_main]

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = mcp_server_auth::jwt::base64url_decode(text);
    let theirs = URL_SAFE_NO_PAD.decode(text).ok();
    assert_eq!(ours, theirs, "{text:?}");
});
