//! Base64url without padding (RFC 4648 §5), the encoding of a compact JWS's three segments
//! (RFC 7515 §2), decoded into a buffer the caller owns.
//!
//! Why not the `base64` crate here: it is correct and general (alphabets, padding modes, every
//! buffer shape), and for a token's few hundred characters its set-up and its general loop cost
//! about as much as all the JSON work of a check. This decoder does one thing: four characters
//! become three bytes through four lookup tables whose entries are already shifted into place,
//! so a group is four loads and three ORs; an invalid character sets a bit no valid one sets,
//! tested once at the end. It accepts exactly what `URL_SAFE_NO_PAD` accepts: the URL-safe
//! alphabet, no `=`, no whitespace, and a last character whose unused low bits are zero (so each
//! byte string has one encoding); the fuzz target `base64url` checks this against the crate.
//!
//! ```
//! use mcp_server_auth::jwt::base64url_decode; // for the fuzz target; not part of the API
//!
//! assert_eq!(base64url_decode("e30").as_deref(), Some(&b"{}"[..]));
//! assert_eq!(base64url_decode("e30="), None); // padding
//! assert_eq!(base64url_decode("e31"), None); // stray low bits: not the one encoding of "{}"
//! ```

/// Set in a table entry for a character outside the alphabet; no valid entry sets it.
const BAD: u32 = 1 << 31;

/// The 6-bit value of each character, shifted left by `shift`; [`BAD`] outside the alphabet.
const fn table(shift: u32) -> [u32; 256] {
    let mut t = [BAD; 256];
    let mut c = 0;
    while c < 256 {
        let value = match c as u8 {
            b'A'..=b'Z' => c - b'A' as usize,
            b'a'..=b'z' => c - b'a' as usize + 26,
            b'0'..=b'9' => c - b'0' as usize + 52,
            b'-' => 62,
            b'_' => 63,
            _ => 64,
        };
        if value < 64 {
            t[c] = (value as u32) << shift;
        }
        c += 1;
    }
    t
}

static FIRST: [u32; 256] = table(18);
static SECOND: [u32; 256] = table(12);
static THIRD: [u32; 256] = table(6);
static FOURTH: [u32; 256] = table(0);

/// The decoded length of `chars` characters, or `None` if no unpadded encoding has that many
/// (one character past a group of four).
pub(crate) const fn decoded_len(chars: usize) -> Option<usize> {
    match chars % 4 {
        0 => Some(chars / 4 * 3),
        1 => None,
        r => Some(chars / 4 * 3 + r - 1),
    }
}

/// Decodes `input` into the start of `out`; returns the decoded length, or `None` if `input` is
/// not canonical unpadded Base64url or `out` is shorter than [`decoded_len`].
pub(crate) fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(input.len())?;
    let out = out.get_mut(..len)?;
    let mut seen = 0;
    // Sixteen characters (twelve bytes) at a time, then four at a time, then the tail: a
    // round is sixteen loads and sixteen ORs of table entries, and its bookkeeping (bounds,
    // stores) is shared by sixteen characters.
    let (mut i, mut o) = (0, 0);
    for (c, dst) in input.chunks_exact(16).zip(out.chunks_exact_mut(12)) {
        let quad = |k: usize| {
            FIRST[usize::from(c[k])]
                | SECOND[usize::from(c[k + 1])]
                | THIRD[usize::from(c[k + 2])]
                | FOURTH[usize::from(c[k + 3])]
        };
        let (a, b, d, e) = (quad(0), quad(4), quad(8), quad(12));
        seen |= a | b | d | e;
        // 24 bits each (a BAD bit shifted out is in `seen` already): the first eight bytes,
        // then the last four.
        let head = (u64::from(a) << 40) | (u64::from(b) << 16) | (u64::from(d) >> 8);
        let tail = (d << 24) | (e & 0x00FF_FFFF);
        dst[..8].copy_from_slice(&head.to_be_bytes());
        dst[8..].copy_from_slice(&tail.to_be_bytes());
        i += 16;
        o += 12;
    }
    let mut quads = input[i..].chunks_exact(4);
    let mut triples = out[o..].chunks_exact_mut(3);
    for (q, t) in (&mut quads).zip(&mut triples) {
        let n = FIRST[usize::from(q[0])]
            | SECOND[usize::from(q[1])]
            | THIRD[usize::from(q[2])]
            | FOURTH[usize::from(q[3])];
        seen |= n;
        let [_, a, b, c] = n.to_be_bytes();
        t.copy_from_slice(&[a, b, c]);
    }
    let tail = triples.into_remainder();
    match (quads.remainder(), tail) {
        ([], []) => {}
        (&[a, b], [x]) => {
            let n = FIRST[usize::from(a)] | SECOND[usize::from(b)];
            // Four bits of the second character are past the byte: they must be zero.
            if n & 0xF000 != 0 {
                return None;
            }
            seen |= n;
            *x = (n >> 16) as u8;
        }
        (&[a, b, c], [x, y]) => {
            let n = FIRST[usize::from(a)] | SECOND[usize::from(b)] | THIRD[usize::from(c)];
            // Two bits of the third character are past the bytes: they must be zero.
            if n & 0xC0 != 0 {
                return None;
            }
            seen |= n;
            *x = (n >> 16) as u8;
            *y = (n >> 8) as u8;
        }
        // `decoded_len` matched the remainders' lengths.
        _ => return None,
    }
    (seen & BAD == 0).then_some(len)
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn ours(input: &str) -> Option<Vec<u8>> {
        let mut out = vec![0; input.len()];
        let n = decode(input.as_bytes(), &mut out)?;
        out.truncate(n);
        Some(out)
    }

    #[test]
    fn every_string_up_to_three_characters_decodes_as_the_base64_crate_decodes_it() {
        // All 1-, 2- and 3-character strings over the alphabet and a few outsiders: every tail
        // and every choice of trailing bits.
        let chars: Vec<char> = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain("-_=+/ .\u{e9}".chars())
            .collect();
        let mut checked = 0;
        for a in &chars {
            assert_eq!(
                ours(&a.to_string()),
                URL_SAFE_NO_PAD.decode(a.to_string()).ok()
            );
            for b in &chars {
                for c in [None].into_iter().chain(chars.iter().map(Some)) {
                    let s: String = [Some(*a), Some(*b), c.copied()]
                        .into_iter()
                        .flatten()
                        .collect();
                    assert_eq!(ours(&s), URL_SAFE_NO_PAD.decode(&s).ok(), "{s:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 70_000, "{checked}");
    }

    #[test]
    fn long_inputs_round_trip_and_one_bad_character_anywhere_is_refused() {
        let bytes: Vec<u8> = (0..=255).cycle().take(700).collect();
        for n in 0..bytes.len() {
            let encoded = URL_SAFE_NO_PAD.encode(&bytes[..n]);
            assert_eq!(ours(&encoded).as_deref(), Some(&bytes[..n]), "{n}");
        }
        let encoded = URL_SAFE_NO_PAD.encode(&bytes);
        for i in 0..encoded.len() {
            for bad in ["=", "+", "/", ".", "\u{0}"] {
                let mut s = encoded.clone();
                s.replace_range(i..=i, bad);
                assert_eq!(ours(&s), None, "{bad:?} at {i}");
            }
        }
    }

    #[test]
    fn a_buffer_shorter_than_the_decoded_length_is_refused() {
        let mut out = [0; 2];
        assert_eq!(decode(b"e30", &mut out), Some(2));
        assert_eq!(decode(b"e30e", &mut out), None);
        assert_eq!(decoded_len(5), None);
        assert_eq!(decoded_len(6), Some(4));
    }
}
