//! Arbitrary bytes → `operation::from_body`. When it reads a body, serde_json's own `Value`
//! reading of the same bytes (what the MCP server behind will see) must agree: the same
//! methods, in order, and the same tool/prompt names and resource URIs (for
//! `completion/complete`, those of `params.ref`). `check_match` must then
//! accept the body's own operation as headers and refuse any other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_server_auth::mcp::operation::{self, NameKind, Operation, OperationError};
use serde_json::Value;

/// The operation of one message as a server reading a `Value` sees it.
fn value_op(msg: &Value) -> Option<Operation> {
    let obj = msg.as_object().expect("an accepted message is an object");
    let method = obj.get("method")?;
    let method = method.as_str().expect("an accepted method is a string");
    if method == "completion/complete" {
        let reference = obj.get("params").and_then(|p| p.get("ref"));
        let field = |f: &str| {
            reference
                .and_then(|r| r.get(f))
                .and_then(Value::as_str)
                .expect("an accepted completion names its prompt or resource")
                .to_owned()
        };
        let kind = reference.and_then(|r| r.get("type")).and_then(Value::as_str);
        return Some(match kind {
            Some("ref/prompt") => Operation::completion(NameKind::Prompt, field("name")),
            Some("ref/resource") => Operation::completion(NameKind::Resource, field("uri")),
            other => panic!("an accepted completion has a known ref type, not {other:?}"),
        });
    }
    let name = operation::name_field(method).map(|field| {
        obj.get("params")
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .expect("an accepted message names its tool, prompt or resource")
            .to_owned()
    });
    Some(Operation::new(method, name))
}

fuzz_target!(|data: &[u8]| {
    let body = match operation::from_body(data) {
        Ok(b) => b,
        Err(e) => {
            assert!(matches!(
                e,
                OperationError::NotJson | OperationError::NotJsonRpc(_)
            ));
            assert!(matches!(e.code(), -32700 | -32600));
            return;
        }
    };
    let value: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            // The one difference allowed: serde_json skips the members it does not keep (as a
            // typed server does) checking their syntax only, not number ranges, nesting depth or
            // UTF-16 surrogate pairs in escapes, which `Value` checks.
            let e = e.to_string();
            assert!(
                [
                    "number out of range",
                    "recursion limit exceeded",
                    "unexpected end of hex escape",
                    "lone leading surrogate in hex escape",
                ]
                .iter()
                .any(|known| e.starts_with(known))
                    // serde_json's private marker key nested in a member the layer does not
                    // read: `Value` parses the marker's string, which may be anything (where
                    // the layer reads, markers are refused). It may hide behind escapes.
                    || data.windows(9).any(|w| w == b"private::")
                    || data.windows(2).any(|w| w == b"\\u"),
                "an accepted body is JSON: {e}"
            );
            return;
        }
    };
    let expected: Vec<Operation> = match &value {
        Value::Array(items) => {
            assert!(body.is_batch() && !items.is_empty());
            assert!(body.id().is_none());
            items.iter().filter_map(value_op).collect()
        }
        single => {
            assert!(!body.is_batch());
            let id = body
                .id()
                .map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap());
            // `"id": null` reads as no id.
            assert_eq!(id.as_ref(), single.get("id").filter(|v| !v.is_null()));
            value_op(single).into_iter().collect()
        }
    };
    assert_eq!(body.operations(), expected.as_slice());

    // Headers derived from the body: its own operation matches; anything else does not.
    match (body.is_batch(), body.operations()) {
        (false, [op]) => {
            assert_eq!(operation::check_match(op, &body), Ok(()));
            let other_method = Operation::new(format!("{}x", op.method()), op.name());
            assert_eq!(
                operation::check_match(&other_method, &body),
                Err(OperationError::Mismatch("Mcp-Method"))
            );
            let other_name =
                Operation::new(op.method(), Some(format!("{}x", op.name().unwrap_or(""))));
            assert!(operation::check_match(&other_name, &body).is_err());
            if op.name().is_some() && operation::name_in_header(op.method()) {
                assert_eq!(
                    operation::check_match(&Operation::new(op.method(), None::<String>), &body),
                    Err(OperationError::MissingName(op.method().to_owned()))
                );
            }
        }
        (_, ops) => {
            let header = ops
                .first()
                .cloned()
                .unwrap_or_else(|| Operation::new("tools/list", None::<String>));
            assert!(operation::check_match(&header, &body).is_err());
        }
    }
});
