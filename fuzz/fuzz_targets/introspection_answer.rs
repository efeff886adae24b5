//! Arbitrary bytes → the introspection answer reader (RFC 7662 §2.2), for the resource
//! `https://mcp.example.com/mcp` and the issuer `https://auth.example.com`. It must never panic;
//! it must call "no answer" exactly what is not a JSON object; and an accepted answer must meet
//! every rule, checked here again on `serde_json`'s own reading of the bytes (a binding in
//! `cnf` only in the form the DPoP and certificate checks read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_server_auth::introspection::read_answer;
use serde_json::Value;

const RESOURCE: &str = "https://mcp.example.com/mcp";

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<Value>(data).ok();
    let verdict = read_answer(data);
    let Some(Value::Object(answer)) = parsed else {
        assert_eq!(verdict, None, "a non-object was read as an answer");
        return;
    };
    let Some(verdict) = verdict else {
        panic!("a JSON object was called no answer");
    };
    let Ok(subject) = verdict else {
        return;
    };
    assert_eq!(answer.get("active"), Some(&Value::Bool(true)));
    // A binding (RFC 7800 `cnf`) is accepted only in a form the DPoP and certificate checks
    // read: an object of `jkt` and/or `x5t#S256`, strings, nothing else.
    if let Some(cnf) = answer.get("cnf") {
        let Value::Object(cnf) = cnf else {
            panic!("a cnf that is not an object was accepted: {cnf}");
        };
        assert!(!cnf.is_empty(), "an empty cnf was accepted");
        for (name, value) in cnf {
            assert!(
                matches!(name.as_str(), "jkt" | "x5t#S256")
                    && value.as_str().is_some_and(|v| !v.is_empty()),
                "a cnf member {name:?} = {value} was accepted"
            );
        }
    }
    assert!(answer.get("exp").is_some_and(Value::is_number));
    match answer.get("iss") {
        None => {}
        Some(iss) => assert_eq!(iss.as_str(), Some("https://auth.example.com")),
    }
    let ours = |a: &Value| {
        a.as_str().is_some_and(|a| {
            mcp_server_auth::ResourceUrl::parse(RESOURCE)
                .unwrap()
                .matches(a)
        })
    };
    match answer.get("aud") {
        Some(Value::Array(list)) => assert!(list.iter().any(ours)),
        Some(aud) => assert!(ours(aud)),
        None => panic!("an answer without aud was accepted"),
    }
    let named = |n: &str| answer.get(n).and_then(Value::as_str).filter(|s| !s.is_empty());
    assert_eq!(Some(subject.as_str()), named("sub").or_else(|| named("client_id")));
});
