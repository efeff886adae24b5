//! The client certificate a TLS-terminating proxy forwards in a header: URL-encoded PEM (nginx
//! `$ssl_client_escaped_cert`, AWS ALB, Traefik with PEM) or Envoy's `x-forwarded-client-cert`
//! with a `Cert="…"` element.
//!
//! The value is untrusted text until proven otherwise (it is read only from a trusted proxy,
//! but a proxy may pass on what its client sent): it is parsed strictly, in bounded memory,
//! and anything unexpected is refused rather than guessed at. One certificate, never a chain
//! (which one would the binding mean?); one XFCC element, never several (with several, the
//! proxy appended to one its client sent: configure Envoy's `forward_client_cert_details` as
//! `SANITIZE_SET`); the DER must be a single well-formed ASN.1 `SEQUENCE`.
//!
//! ```
//! use mcp_server_auth::mtls::{CertHeaderError, parse_client_cert_header};
//!
//! assert_eq!(parse_client_cert_header(b"garbage"), Err(CertHeaderError::Xfcc));
//! ```

use base64::{Engine as _, engine::general_purpose::STANDARD};

/// The largest header value read, in bytes: a URL-encoded PEM certificate is some three times
/// its DER, and certificates beyond 4 KiB of DER are rare.
pub const MAX_CERT_HEADER_BYTES: usize = 16 * 1024;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Why a client certificate header cannot be read. It never repeats the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertHeaderError {
    /// Longer than [`MAX_CERT_HEADER_BYTES`].
    #[error(
        "the client certificate header is longer than 16 KiB: forward the leaf certificate only"
    )]
    TooLarge,
    /// The header appears more than once.
    #[error(
        "the client certificate header appears more than once: the proxy must set it, not append to it"
    )]
    Repeated,
    /// A `%` not followed by two hexadecimal digits, or bytes that are not visible ASCII.
    #[error("the client certificate header is not URL-encoded text (RFC 3986 §2.1)")]
    Encoding,
    /// Not one PEM `CERTIFICATE` block (RFC 7468 §5) with Base64 inside.
    #[error(
        "the client certificate is not one PEM CERTIFICATE block: forward the leaf certificate, URL-encoded"
    )]
    Pem,
    /// Not Envoy's `x-forwarded-client-cert` with one element and one `Cert="…"`.
    #[error(
        "the client certificate header is neither URL-encoded PEM nor an x-forwarded-client-cert \
         with one element carrying Cert=\"…\": configure the proxy to forward the certificate \
         (Envoy: forward_client_cert_details SANITIZE_SET, set_current_client_cert_details cert)"
    )]
    Xfcc,
    /// The certificate is not one DER `SEQUENCE` (X.509, RFC 5280 §4.1).
    #[error("the client certificate is not DER-encoded X.509")]
    NotDer,
}

/// The DER of the client certificate in a header value: URL-encoded PEM (nginx
/// `$ssl_client_escaped_cert`), or an Envoy `x-forwarded-client-cert` with one element carrying
/// `Cert="…"` (URL-encoded PEM). One certificate only, never a chain; one XFCC element only
/// (configure Envoy's `forward_client_cert_details` as `SANITIZE_SET`); the DER must be one
/// ASN.1 `SEQUENCE`. At most [`MAX_CERT_HEADER_BYTES`]. Public for the fuzz target and for
/// tools; [`CertificateBound`](super::CertificateBound) reads headers itself.
pub fn parse_client_cert_header(value: &[u8]) -> Result<Vec<u8>, CertHeaderError> {
    if value.len() > MAX_CERT_HEADER_BYTES {
        return Err(CertHeaderError::TooLarge);
    }
    if !value
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
    {
        return Err(CertHeaderError::Encoding);
    }
    let value = value.trim_ascii();
    let decoded = percent_decode(value)?;
    if decoded.trim_ascii_start().starts_with(BEGIN.as_bytes()) {
        return pem(&decoded);
    }
    let cert = xfcc_cert(value)?;
    pem(&percent_decode(&cert)?)
}

/// `%XX` decoded; anything else kept as it is (`+` is a Base64 character here, not a space).
fn percent_decode(input: &[u8]) -> Result<Vec<u8>, CertHeaderError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let hex = |j: usize| input.get(j).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(CertHeaderError::Encoding);
            };
            // Two hex digits: at most 255.
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// The DER of the one `CERTIFICATE` block that `text` is (surrounding whitespace allowed).
fn pem(text: &[u8]) -> Result<Vec<u8>, CertHeaderError> {
    let text = std::str::from_utf8(text.trim_ascii()).map_err(|_| CertHeaderError::Pem)?;
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|t| t.strip_suffix(END))
        .ok_or(CertHeaderError::Pem)?;
    // A second block, or any other label, leaves dashes inside.
    if body.contains('-') {
        return Err(CertHeaderError::Pem);
    }
    let base64: Vec<u8> = body
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    let der = STANDARD.decode(&base64).map_err(|_| CertHeaderError::Pem)?;
    if !is_der_sequence(&der) {
        return Err(CertHeaderError::NotDer);
    }
    Ok(der)
}

/// Whether `der` is exactly one DER `SEQUENCE` with a non-empty content, its length in the
/// definite minimal form (X.690 §10.1).
fn is_der_sequence(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (len, content) = match *first {
        n @ 0..=0x7f => (usize::from(n), rest),
        n @ 0x81..=0x84 => {
            let k = usize::from(n - 0x80);
            let Some((bytes, content)) = rest.split_at_checked(k) else {
                return false;
            };
            // Minimal: no leading zero byte, and the short form where it would do.
            if bytes[0] == 0 || (k == 1 && bytes[0] < 0x80) {
                return false;
            }
            let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
            (len, content)
        }
        _ => return false,
    };
    len > 0 && len == content.len()
}

/// The raw value of the one `Cert` of an `x-forwarded-client-cert` with one element, unquoted.
fn xfcc_cert(value: &[u8]) -> Result<Vec<u8>, CertHeaderError> {
    let mut elements = split_unquoted(value, b',');
    let element = elements.next().ok_or(CertHeaderError::Xfcc)?;
    if elements.next().is_some() {
        return Err(CertHeaderError::Xfcc);
    }
    let mut cert = None;
    for pair in split_unquoted(element, b';') {
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or(CertHeaderError::Xfcc)?;
        let (key, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
        if key.eq_ignore_ascii_case(b"cert") {
            if cert.is_some() {
                return Err(CertHeaderError::Xfcc);
            }
            cert = Some(unquote(value)?);
        }
    }
    cert.ok_or(CertHeaderError::Xfcc)
}

/// `value` without its double quotes and with `\x` read as `x`; bare when it is not quoted.
fn unquote(value: &[u8]) -> Result<Vec<u8>, CertHeaderError> {
    let Some(inner) = value.strip_prefix(b"\"") else {
        return match value.contains(&b'"') || value.contains(&b'\\') {
            true => Err(CertHeaderError::Xfcc),
            false => Ok(value.to_vec()),
        };
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.push(*bytes.next().ok_or(CertHeaderError::Xfcc)?),
            // The closing quote must end the value.
            b'"' if bytes.as_slice().is_empty() => return Ok(out),
            b'"' => return Err(CertHeaderError::Xfcc),
            b => out.push(b),
        }
    }
    Err(CertHeaderError::Xfcc)
}

/// The parts of `value` between the `sep` bytes that are outside double quotes (a `\` inside
/// quotes escapes the next byte). Empty parts (surrounding whitespace aside) are skipped.
fn split_unquoted(value: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let (mut quoted, mut escaped) = (false, false);
    let mut parts = Vec::new();
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    parts.push(&value[start..]);
    parts
        .into_iter()
        .map(<[u8]>::trim_ascii)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal DER SEQUENCE, and its PEM.
    const DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];

    fn pem_of(der: &[u8]) -> String {
        format!("{BEGIN}\n{}\n{END}\n", STANDARD.encode(der))
    }

    fn escaped(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect()
    }

    #[test]
    fn url_encoded_pem_as_nginx_forwards_it_is_read() {
        let value = escaped(&pem_of(DER));
        assert_eq!(parse_client_cert_header(value.as_bytes()), Ok(DER.to_vec()));
    }

    #[test]
    fn an_envoy_xfcc_element_with_a_quoted_cert_is_read() {
        let value = format!(
            "By=spiffe://mesh/mcp;Hash=abcd;Cert=\"{}\";Subject=\"CN=a, O=\\\"b;c\\\"\";URI=spiffe://mesh/client",
            escaped(&pem_of(DER))
        );
        assert_eq!(parse_client_cert_header(value.as_bytes()), Ok(DER.to_vec()));
    }

    #[test]
    fn two_xfcc_elements_a_chain_or_a_broken_value_are_refused() {
        let cert = escaped(&pem_of(DER));
        let two = format!("Cert=\"{cert}\",Cert=\"{cert}\"");
        assert_eq!(
            parse_client_cert_header(two.as_bytes()),
            Err(CertHeaderError::Xfcc)
        );
        let chain = escaped(&format!("{}{}", pem_of(DER), pem_of(DER)));
        assert_eq!(
            parse_client_cert_header(chain.as_bytes()),
            Err(CertHeaderError::Pem)
        );
        let cases: [(&[u8], CertHeaderError); 5] = [
            (b"%2", CertHeaderError::Encoding),
            (b"Cert=\"abc", CertHeaderError::Xfcc),
            (b"By=x", CertHeaderError::Xfcc),
            (b"\xff", CertHeaderError::Encoding),
            (
                b"-----BEGIN CERTIFICATE-----MAA=-----END CERTIFICATE-----",
                CertHeaderError::NotDer,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(parse_client_cert_header(value), Err(want), "{value:?}");
        }
        let big = vec![b'a'; MAX_CERT_HEADER_BYTES + 1];
        assert_eq!(
            parse_client_cert_header(&big),
            Err(CertHeaderError::TooLarge)
        );
    }

    #[test]
    fn only_a_minimal_definite_length_sequence_is_der() {
        assert!(is_der_sequence(DER));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert!(is_der_sequence(&long));
        for bad in [
            &[0x30, 0x00][..],
            &[0x31, 0x01, 0x00],
            &[0x30, 0x02, 0x00],
            &[0x30, 0x81, 0x01, 0x00],
            &[0x30, 0x82, 0x00, 0x01, 0x00],
            &[0x30, 0x80, 0x00, 0x00],
        ] {
            assert!(!is_der_sequence(bad), "{bad:?}");
        }
    }
}
