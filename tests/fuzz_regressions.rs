//! Inputs the fuzz targets (`fuzz/`) crashed on, kept as plain tests: each calls the same
//! functions as its target, on the crashing input written as bytes.
#![cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] // JWT verification needs a crypto backend.

use mcp_server_auth::{
    ProtectedResourceMetadata, ResourceUrl,
    jwt::{Algorithm, KeySet},
    mcp::operation::{self, Operation},
    resource::ResourceUrlError,
};

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// `resource_url`, crash-6edefd26…: an `@` in the path is not user information. (The target's
/// invariant was wrong; the library was right.)
#[test]
fn resource_url_at_sign_in_path() {
    let input = text(b"http://[::1]:3000/0000000000000@c");
    let r = ResourceUrl::parse(input).unwrap();
    assert_eq!(r.as_str(), input);
    assert_eq!(r.origin(), "http://[::1]:3000");
    assert_eq!(r.path(), "/0000000000000@c");
    assert_eq!(
        r.metadata_url(),
        "http://[::1]:3000/.well-known/oauth-protected-resource/0000000000000@c"
    );
    assert!(r.matches(input));
    assert_eq!(ResourceUrl::parse(r.as_str()).unwrap(), r);
}

/// `resource_url`, crash-effa68ec…: user information that is just `…`, the mark redaction
/// writes in its place, reads the same after redaction. (The target's invariant was wrong; the
/// message was redacted.) A real password in the same place never reaches the message.
#[test]
fn resource_url_userinfo_that_is_the_redaction_mark() {
    let input =
        text(b"htt\"hhtttps://\xe2\x80\xa6@0\" is not an absolute URL such as https://mcp.exae8h4");
    let message = ResourceUrl::parse_allowing_plain_http(input)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(r#""htt\"hhtttps://…@0\" is not an absolute URL"#),
        "{message}"
    );
    let secret = input.replace('…', "hunter2");
    let message = ResourceUrl::parse_allowing_plain_http(&secret)
        .unwrap_err()
        .to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("hhtttps://…@0"), "{message}");
}

/// `resource_url`, crash-ce498a7f…: a one-letter password (`r`) matched the fixed `user@host`
/// of the message. (The target's invariant was wrong; it now checks the URL the error carries.)
#[test]
fn resource_url_short_userinfo_is_redacted() {
    let input = text(b"https://r@soh843scron=");
    match ResourceUrl::parse(input).unwrap_err() {
        ResourceUrlError::UserInfo(url) => assert_eq!(url, "https://…@soh843scron="),
        other => panic!("{other:?}"),
    }
}

/// `resource_url`, crash-99472ca7…: `http::Uri` accepts the authority `2[:YYYYYYYyY:1]:3000`
/// and reads its host as `2[`; `ResourceUrl` used to accept it with the canonical form
/// `http://2[:3000`, which does not parse. The same leniency let junk after the host vanish
/// (`[::1]x`, `h:[x]:443`, an out-of-range port), so that, for example, a token with
/// `aud` `https://mcp.example.com:99999/mcp` matched the resource `https://mcp.example.com/mcp`.
/// All are refused now.
#[test]
fn resource_url_malformed_host_or_port_is_refused() {
    for input in [
        &b"http://2[:YYYYYYYyY:1]:3000/"[..],
        b"https://2[:YYYYYYYyY:1]:3000/",
        b"https://good.example:[x]:443/mcp",
        b"https://[::1]x/mcp",
        b"http://[::1]x:8080/mcp",
        b"https://h[1]/",
        b"https://[zz]/",
        b"https://h:99999/",
        b"https://h:65536/mcp",
    ] {
        let input = text(input);
        assert!(ResourceUrl::parse(input).is_err(), "{input}");
        assert!(
            ResourceUrl::parse_allowing_plain_http(input).is_err(),
            "{input}"
        );
    }
    let r = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
    assert!(!r.matches("https://mcp.example.com:99999/mcp"));
    assert!(!r.matches("https://mcp.example.com:[x]:443/mcp"));
    assert!(
        ProtectedResourceMetadata::builder(r.clone())
            .authorization_server("https://auth.example.com:[x]:443")
            .build()
            .is_err()
    );
    // Still accepted: an empty port (the default), leading zeros, IPv6 literals.
    assert_eq!(
        ResourceUrl::parse("https://h:/mcp").unwrap().as_str(),
        "https://h/mcp"
    );
    assert_eq!(
        ResourceUrl::parse("https://h:0443/mcp").unwrap().as_str(),
        "https://h/mcp"
    );
    assert_eq!(
        ResourceUrl::parse("https://[2001:DB8::1]:8443/mcp")
            .unwrap()
            .as_str(),
        "https://[2001:db8::1]:8443/mcp"
    );
    assert!(ResourceUrl::parse("http://[::1]:3000/mcp").is_ok());
}

/// `jwks`, crash-19cb237f…: a JWK with its member `n` three times. (The target's cross-check
/// was wrong: it compared with jsonwebtoken's typed `JwkSet` parsed straight from the text,
/// which does not keep the last duplicate.) `from_jwks_json` reads the last one, as RFC 7517 §4
/// allows, and the typed path agrees when given the same parsed document.
#[test]
fn jwks_duplicate_member_uses_the_last() {
    let input = text(
        br#"{"keys":[{"kty":"RSA","kid":"r1","alg":"PS256","n":"sXchDaQebHnPiGvyDOAT4saG256","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrJCpkv4:Kj&TAumiGUIuQhrNhZLu256","n":"sXchDaQeVTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#,
    );
    let (set, skipped) = KeySet::from_jwks_json_counting(input).unwrap();
    assert_eq!((set.len(), skipped), (1, 0));
    let key = set.iter().next().unwrap();
    assert_eq!((key.kid(), key.algorithm()), (Some("r1"), Algorithm::PS256));
    let value: serde_json::Value = serde_json::from_str(input).unwrap();
    let typed: jsonwebtoken::jwk::JwkSet = serde_json::from_value(value).unwrap();
    assert_eq!(KeySet::from_jwk_set(&typed).len(), 1);
    // With the last `n` unreadable instead, the key is skipped: the last duplicate is read.
    let last_bad = input.replace(
        r#""n":"sXchDaQeVTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw""#,
        r#""n":"!!""#,
    );
    assert_eq!(
        KeySet::from_jwks_json_counting(&last_bad)
            .map(|(s, n)| (s.len(), n))
            .unwrap(),
        (0, 1)
    );
}

/// `jwks`, crash-1376774b…: `[[]]` was read as a JWKS (serde reads a struct from a sequence
/// too). A JWKS is a JSON object (RFC 7517 §5): anything else is refused now.
#[test]
fn jwks_must_be_an_object() {
    for input in [
        &b"[[]]"[..],
        b" [[{\"kty\":\"OKP\"}]]",
        b"\"keys\"",
        b"null",
    ] {
        assert!(KeySet::from_jwks_json(text(input)).is_err(), "{input:?}");
    }
    assert_eq!(KeySet::from_jwks_json(" \n{\"keys\":[]}").unwrap().len(), 0);
}

/// `jsonrpc_body`, crash-36031649… and crash-50d23bdd…: a member the layer does not read holds
/// a number `Value` cannot hold, or a lone surrogate escape. The layer reads the operation (none: no `method`) as a typed server would,
/// skipping that member; only `serde_json::Value` refuses the body. (The target's cross-check
/// was too strict.) Same for nesting deeper than `Value`'s recursion limit, which the layer
/// skips without recursing.
#[test]
fn jsonrpc_body_skips_members_it_does_not_read() {
    let input = br#" [{"mmthod":4550000000000008152539E090909,"":{"9mne":"a"}}]"#;
    let ops = operation::from_body(input).unwrap();
    assert!(ops.is_batch() && ops.operations().is_empty());
    assert!(serde_json::from_slice::<serde_json::Value>(input).is_err());

    // crash-50d23bdd…: a lone UTF-16 surrogate escape (`\uDBBB` not followed by `\u`) in a
    // member the layer does not read.
    let input =
        br#"{"so*rpc":"ite\uBBBBBBBBBBBBBBRBBBitLe\uBBBBBBBBRlite\uDBBBBBme5flite\u00BB#"}"#;
    assert!(operation::from_body(input).unwrap().operations().is_empty());
    assert!(serde_json::from_slice::<serde_json::Value>(input).is_err());
    // In a member it reads, the same escape makes the body unreadable.
    for body in [
        &br#"{"method":"tools/\uDBBB/call"}"#[..],
        br#"{"method":"tools/call","params":{"name":"\uDBBBx"}}"#,
    ] {
        assert!(operation::from_body(body).is_err());
    }

    let deep = |inner: &str| {
        let n = 100_000;
        format!("{}{}{}", "[".repeat(n), inner, "]".repeat(n))
    };
    let body = format!(
        r#"{{"method":"tools/call","params":{{"name":"a","x":{}}}}}"#,
        deep("")
    );
    let ops = operation::from_body(body.as_bytes()).unwrap();
    assert_eq!(ops.operations(), [Operation::tool("a")]);
    assert!(operation::from_body(deep("").as_bytes()).is_err());
}

/// `jsonrpc_body`, crash-1d64d9ea…: `{"$serde_json::private::RawValue":""}`. With serde_json's
/// `raw_value` feature, which this crate turns on for every crate in the build,
/// `serde_json::Value` reads an object whose first member has that name as the JSON inside the
/// string. A server that reads bodies as `Value` (axum's `Json<Value>`, say) then saw a
/// `tools/call` that the scope layer, seeing a message without a method, let through with no
/// per-tool scope check. Such bodies are refused now (rmcp refuses them too).
#[test]
fn jsonrpc_body_serde_json_marker_keys_are_refused() {
    let smuggled = br#"{"$serde_json::private::RawValue":"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"admin_tool\"}}"}"#;
    let seen: serde_json::Value = serde_json::from_slice(smuggled).unwrap();
    assert_eq!(
        seen["method"], "tools/call",
        "what a server reading Value sees"
    );
    for body in [
        &br#"{"$serde_json::private::RawValue":""}"#[..],
        smuggled,
        // Escaped, in a batch, with a null value, or the arbitrary_precision marker.
        br#"[{"method":"tools/list"},{"\u0024serde_json::private::RawValue":"{\"method\":\"tools/call\",\"params\":{\"name\":\"admin_tool\"}}"}]"#,
        br#"{"method":"tools/list","$serde_json::private::RawValue":null}"#,
        br#"{"$serde_json::private::Number":"1"}"#,
    ] {
        assert!(
            matches!(
                operation::from_body(body),
                Err(operation::OperationError::NotJsonRpc(_))
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// Found while fuzzing `jsonrpc_body`: the serde_json marker inside `params`. A server reading
/// `Value` replaces params made only of the marker with the JSON in its string (`write_note`);
/// with other members beside it, `Value` fails to parse. Either way the layer refuses (defence in
/// depth: the first case also lacks a `name` for a typed reader).
#[test]
fn jsonrpc_body_marker_inside_params_is_refused() {
    let only = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"$serde_json::private::RawValue":"{\"name\":\"write_note\"}"}}"#;
    let seen: serde_json::Value = serde_json::from_slice(only).unwrap();
    assert_eq!(
        seen["params"]["name"], "write_note",
        "what a server reading Value sees"
    );
    let beside = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","$serde_json::private::RawValue":"{}"}}"#;
    for body in [&only[..], beside] {
        assert!(matches!(
            operation::from_body(body),
            Err(operation::OperationError::NotJsonRpc(_))
        ));
    }
}

/// `jwt_structured`, crash-cc82c077…: a token correctly signed with a trusted key whose `exp` is
/// 16523839413723587072, more seconds than `SystemTime` can add to the epoch: building the
/// identity's `expires_at` panicked. A NumericDate after the year 9999 is malformed claims now.
#[tokio::test]
async fn jwt_exp_past_what_system_time_holds_is_refused() {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use mcp_server_auth::{
        jwt::{Issuer, JwtVerifier},
        verifier::{Invalid, Rejection},
    };
    const SECRET: &[u8] = b"test-only-hmac-secret-0123456789-abcdefghij";
    mcp_server_auth::jwt::install_crypto_provider().unwrap();
    let verifier = JwtVerifier::builder(ResourceUrl::parse("https://mcp.example.com/mcp").unwrap())
        .issuer(Issuer::with_keys(
            "https://auth.example.com",
            KeySet::new()
                .add_hmac_secret(Some("hs-1"), Algorithm::HS256, SECRET)
                .unwrap(),
        ))
        .build()
        .unwrap();
    // The target's input: header, claims and signing mode, one per line.
    let header = br#"{"alg":"HS256","typ":"at+jwt","kid":"hs-1"}"#;
    let claims = |exp: &str| {
        format!(
            r#"{{"iss":"https://auth.example.com","aud":"hth.example.com","aud":"https://mcp.example.com/mcp","exp":{exp},"sub":"alice","client_id":"app","jti":"j1","scope":"mcp:reammmmmmmmmmmmmmm :    k  kmin"}}"#
        )
    };
    let sign = |claims: &str| {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{message}.{signature}")
    };
    for exp in [
        "16523839413723587072",
        "9223372036854775808",
        "18446744073709551615",
        "253402300800",
        "1e300",
    ] {
        assert_eq!(
            verifier
                .verify_token(&sign(&claims(exp)))
                .await
                .unwrap_err(),
            Rejection::Invalid(Invalid::Claims),
            "exp {exp}"
        );
    }
    // The last second of the year 9999 is still a time, and the token is accepted.
    let info = verifier
        .verify_token(&sign(&claims("253402300799")))
        .await
        .unwrap();
    assert_eq!(
        info.expires_at(),
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_799))
    );
}
