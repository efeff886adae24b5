//! Arbitrary text → the token reader's JSON object reader, differentially against `serde_json`:
//! it must accept exactly the texts `serde_json::from_str::<Map<String, Value>>` accepts (so
//! that `AuthInfo::claims`, which parses the verified text later, always finds the claims the
//! checks read), and for each name the last member's value must be the value the map holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = mcp_server_auth::jwt::json_members(text);
    let theirs = serde_json::from_str::<Map<String, Value>>(text);
    match (ours, theirs) {
        (None, Err(_)) => {}
        (Some(members), Ok(map)) => {
            for (name, value) in map {
                let last = members
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .expect("every name serde_json keeps is a member");
                let parsed: Value = serde_json::from_str(&last.1).expect("a member's text is JSON");
                assert_eq!(parsed, value, "member {name:?}");
            }
        }
        (ours, theirs) => panic!("accepts differ on {text:?}: ours {ours:?}, serde_json {theirs:?}"),
    }
});
