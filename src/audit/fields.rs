//! The fields of an audit event that a client chose (`Mcp-Method`, `Mcp-Name`,
//! `x-request-id`): cut and cleaned, so that no client can forge a log line or a field.

use std::borrow::Cow;

use http::HeaderMap;

/// The most bytes of a client-chosen value kept in an event.
pub(crate) const MAX_FIELD_BYTES: usize = 128;

/// Whether `b` is kept as it is: letters, digits and punctuation that no log format treats
/// specially (no quotes, backslashes, spaces, control bytes, or anything not ASCII).
fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/@+=,;!*$()[]#?&%".contains(&b)
}

/// `value`, cut to [`MAX_FIELD_BYTES`], with every byte not [`kept`] replaced by `_`.
pub(crate) fn sanitize(value: &[u8]) -> Cow<'_, str> {
    let value = &value[..value.len().min(MAX_FIELD_BYTES)];
    if value.iter().all(|&b| kept(b)) {
        // All ASCII.
        Cow::Borrowed(std::str::from_utf8(value).unwrap_or_default())
    } else {
        Cow::Owned(
            value
                .iter()
                .map(|&b| if kept(b) { char::from(b) } else { '_' })
                .collect(),
        )
    }
}

/// The cleaned value of the header `name`, if present (the first one).
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    headers.get(name).map(|v| sanitize(v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_value_is_borrowed_and_a_dirty_one_cleaned_and_cut() {
        assert!(matches!(
            sanitize(b"req-42_a.b"),
            Cow::Borrowed("req-42_a.b")
        ));
        assert_eq!(sanitize(b"a b\"c\\d\n\xff"), "a_b_c_d__");
        assert_eq!(sanitize(&[b'x'; 300]).len(), MAX_FIELD_BYTES);
    }
}
