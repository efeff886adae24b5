//! A strict reader for the small JSON objects of a token (its header and its claims): the
//! whole text is validated as `serde_json` would validate it, and the top-level members are
//! kept as slices of the text, so that a check reads the few claims it needs without building
//! a `Map` of all of them.
//!
//! Why not `serde_json` here: reading a token's claims into a `Map` (a tree node and a `String`
//! per member) or through serde's visitors cost several times the rest of an HMAC check; this
//! reader costs about one pass over the bytes. It accepts exactly what
//! `serde_json::from_str::<Map<String, Value>>` accepts — RFC 8259 JSON whose top level is an
//! object, strings with valid escapes and no unpaired surrogate, numbers that are finite as
//! `f64`, at most 127 levels of nesting — so that the claims [`AuthInfo::claims`] parses later
//! from the same text are always there; the fuzz target `jwt_json` checks this against
//! `serde_json` itself. A repeated member name is kept; lookups take the last one
//! (RFC 7519 §4), as `serde_json`'s `Map` does.
//!
//! [`AuthInfo::claims`]: crate::AuthInfo::claims
//!
//! ```
//! use mcp_server_auth::jwt::json_members; // for the fuzz target; not part of the API
//!
//! // Members in order, values as their text; the text must be one object and nothing else.
//! let members = json_members(r#"{"iss":"a", "iss":"b","exp":1}"#).unwrap();
//! assert_eq!(members[1], ("iss".to_owned(), r#""b""#.to_owned()));
//! assert_eq!(json_members(r#"{"exp":1} {}"#), None);
//! assert_eq!(json_members(r#"{"s":"\ud800"}"#), None); // an unpaired surrogate
//! ```

use std::borrow::Cow;

/// `serde_json`'s recursion limit: a container nested deeper than this is refused.
const MAX_DEPTH: u32 = 127;

/// One JSON value, as a slice of the text it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Json<'a> {
    /// A string, with its quotes; `escaped` if it holds a backslash.
    Str {
        quoted: &'a str,
        escaped: bool,
    },
    /// A number's text (finite as an `f64`).
    Number(&'a str),
    Bool(bool),
    Null,
    /// An array's text, brackets included.
    Array(&'a str),
    /// An object's text, braces included.
    Object(&'a str),
}

impl<'a> Json<'a> {
    /// The string, unescaped (borrowed from the text when it holds no escape).
    pub(crate) fn as_str(&self) -> Option<Cow<'a, str>> {
        match *self {
            Json::Str { quoted, escaped } => Some(unquote(quoted, escaped)),
            _ => None,
        }
    }

    /// The elements of an array (empty for anything else).
    pub(crate) fn elements(&self) -> Elements<'a> {
        let mut scanner = Scanner::new(match *self {
            Json::Array(text) => text,
            _ => "[]",
        });
        scanner.pos = 1;
        Elements {
            scanner,
            first: true,
        }
    }

    /// The number as a NumericDate (RFC 7519 §2): whole seconds, a fraction dropped; `None`
    /// for anything else or a negative number.
    pub(crate) fn as_seconds(&self) -> Option<u64> {
        let Json::Number(text) = *self else {
            return None;
        };
        // Whole seconds (what every issuer writes): digits, folded without `parse`'s set-up.
        if text.len() <= 19 {
            let mut n: u64 = 0;
            let whole = text.bytes().all(|b| {
                let digit = b.wrapping_sub(b'0');
                n = n * 10 + u64::from(digit);
                digit < 10
            });
            if whole {
                return Some(n);
            }
        }
        text.parse::<u64>().ok().or_else(|| {
            let f = text.parse::<f64>().ok()?;
            (f.is_finite() && f >= 0.0).then_some(f as u64)
        })
    }
}

fn unquote(quoted: &str, escaped: bool) -> Cow<'_, str> {
    let inner = &quoted[1..quoted.len() - 1];
    if !escaped {
        return Cow::Borrowed(inner);
    }
    // Rare (escapes in a claim); the text was validated, so this parse succeeds.
    Cow::Owned(serde_json::from_str(quoted).unwrap_or_default())
}

/// The elements of a JSON array, read from its (validated) text.
pub(crate) struct Elements<'a> {
    scanner: Scanner<'a>,
    first: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Json<'a>;
    fn next(&mut self) -> Option<Json<'a>> {
        let s = &mut self.scanner;
        s.ws();
        match s.peek()? {
            b']' => return None,
            b',' if !self.first => s.pos += 1,
            _ if self.first => {}
            _ => return None,
        }
        self.first = false;
        s.value()
    }
}

/// A top-level member: its name (a JSON string) and its value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    name: Json<'a>,
    pub(crate) value: Json<'a>,
}

impl<'a> Member<'a> {
    /// Whether the member is called `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        match self.name {
            Json::Str {
                quoted,
                escaped: false,
            } => quoted.len() == name.len() + 2 && &quoted[1..quoted.len() - 1] == name,
            other => other.as_str().is_some_and(|n| n == name),
        }
    }

    /// The member's name when it holds no escape (almost always): borrowed, no work.
    pub(crate) fn plain_name(&self) -> Option<&'a str> {
        match self.name {
            Json::Str {
                quoted,
                escaped: false,
            } => Some(&quoted[1..quoted.len() - 1]),
            _ => None,
        }
    }

    /// The member's name, unescaped.
    pub(crate) fn name(&self) -> Cow<'_, str> {
        self.name.as_str().unwrap_or_default()
    }
}

/// Reads the JSON object `text`, handing each top-level member to `each` in order; `None` if
/// `text` is not exactly one valid JSON object (whitespace around it allowed), in which case
/// `each` may have seen some members already. No member list is built: a check keeps only the
/// few it reads.
pub(crate) fn object<'a>(text: &'a str, mut each: impl FnMut(Member<'a>)) -> Option<()> {
    let mut s = Scanner::new(text);
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.pos += 1;
    s.depth = 1;
    s.ws();
    if s.peek()? == b'}' {
        s.pos += 1;
    } else {
        loop {
            s.ws();
            if s.peek()? != b'"' {
                return None;
            }
            let name = s.string()?;
            s.ws();
            if s.peek()? != b':' {
                return None;
            }
            s.pos += 1;
            let value = s.value()?;
            each(Member { name, value });
            s.ws();
            match s.peek()? {
                b',' => s.pos += 1,
                b'}' => {
                    s.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    (s.pos == s.bytes.len()).then_some(())
}

/// Within eight bytes of a string (little-endian), a mask whose lowest set bit is the high bit
/// of the first byte that needs attention: a quote, a backslash or a control character (every
/// other byte is content; the text is UTF-8 already). Zero if none does. The usual SWAR tests
/// for "a byte equal to" and "a byte below": a set bit above a real one may be spurious (a
/// borrow), the lowest one never is, and only the lowest is used.
fn special_mask(chunk: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_byte(chunk ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(chunk ^ (ONES * u64::from(b'\\')));
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
    quote | backslash | control
}

/// Whether `b` needs attention inside a string (see [`special_mask`]).
fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether the number `text` is finite as an `f64` (out of line: most numbers are short
/// integers, which always are).
#[inline(never)]
fn finite(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(f64::is_finite)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn value(&mut self) -> Option<Json<'a>> {
        self.ws();
        let start = self.pos;
        Some(match self.peek()? {
            b'"' => self.string()?,
            b'{' => {
                self.container(b'}')?;
                Json::Object(&self.text[start..self.pos])
            }
            b'[' => {
                self.container(b']')?;
                Json::Array(&self.text[start..self.pos])
            }
            b't' => self.literal("true", Json::Bool(true))?,
            b'f' => self.literal("false", Json::Bool(false))?,
            b'n' => self.literal("null", Json::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        })
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| {
            self.pos = end;
            value
        })
    }

    /// A string, at its opening quote.
    #[inline(always)] // a token is mostly strings: keep the scanner's state in registers
    fn string(&mut self) -> Option<Json<'a>> {
        let start = self.pos;
        self.pos += 1;
        // Eight bytes at a time while they are content, then to the first that is not.
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
                break; // eight bytes: never taken
            };
            let mask = special_mask(u64::from_le_bytes(chunk));
            if mask != 0 {
                self.pos += mask.trailing_zeros() as usize / 8;
                break;
            }
            self.pos += 8;
        }
        if self.peek()? != b'"' {
            return self.string_rest(start);
        }
        self.pos += 1;
        Some(Json::Str {
            quoted: &self.text[start..self.pos],
            escaped: false,
        })
    }

    /// The rest of the string opened at `start`, from the first byte the fast scan of
    /// [`string`](Self::string) stopped at that is not its closing quote: near the end of the
    /// text, an escape or a control character.
    #[inline(never)]
    fn string_rest(&mut self, start: usize) -> Option<Json<'a>> {
        let mut escaped = false;
        loop {
            while self.peek().is_some_and(|b| !is_special(b)) {
                self.pos += 1;
            }
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None, // a control character
            }
        }
        self.pos += 1;
        Some(Json::Str {
            quoted: &self.text[start..self.pos],
            escaped,
        })
    }

    /// An escape, at its backslash.
    #[cold]
    fn escape(&mut self) -> Option<()> {
        self.pos += 1;
        match self.peek()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
            b'u' => {
                let unit = self.hex4()?;
                if (0xDC00..0xE000).contains(&unit) {
                    return None; // a trailing surrogate alone
                }
                if (0xD800..0xDC00).contains(&unit) {
                    // A leading surrogate must be followed by an escaped trailing one.
                    if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
                        return None;
                    }
                    self.pos += 1;
                    if !(0xDC00..0xE000).contains(&self.hex4()?) {
                        return None;
                    }
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// `u` and four hex digits, at the `u`.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos + 1..self.pos + 5)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 5;
        u32::from_str_radix(digits, 16).ok()
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let n = self.bytes[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.pos += n;
        n
    }

    /// A number (RFC 8259 §6), finite as an `f64`.
    #[inline(always)]
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        let mut plain = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            plain = false;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            plain = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        let text = &self.text[start..self.pos];
        // Up to 18 digits always fits an i64; longer ones and fractions must be finite.
        if (!plain || text.len() > 18) && !finite(text) {
            return None;
        }
        Some(Json::Number(text))
    }

    /// An array or object, at its opening bracket.
    #[inline(never)] // recursive, and rarer than strings and numbers
    fn container(&mut self, close: u8) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        self.ws();
        if self.peek()? == close {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            if close == b'}' {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                self.string()?;
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
            }
            self.value()?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => break,
                _ => return None,
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;

    #[test]
    fn the_first_byte_that_needs_attention_is_found_in_every_position() {
        for special in [b'"', b'\\', 0x00, 0x1f] {
            for at in 0..8 {
                for filler in [b'a', 0x20, 0x21, 0x7f, 0x80, 0xff, b'"' + 1, b'\\' + 1] {
                    let mut chunk = [filler; 8];
                    chunk[at] = special;
                    // Bytes after it may be anything, specials included.
                    for later in at + 1..8 {
                        chunk[later] = [b'"', 0x00, filler][later % 3];
                    }
                    let mask = special_mask(u64::from_le_bytes(chunk));
                    assert_eq!(mask.trailing_zeros() / 8, at as u32, "{chunk:?}");
                }
            }
        }
        for b in 0..=255u8 {
            let found = special_mask(u64::from_le_bytes([b; 8])) != 0;
            assert_eq!(found, is_special(b), "{b:#x}");
        }
    }

    fn members(text: &str) -> Option<Vec<Member<'_>>> {
        let mut all = Vec::new();
        object(text, |m| all.push(m))?;
        Some(all)
    }

    fn same_as_serde(text: &str) {
        let ours = object(text, |_| {}).is_some();
        let theirs = serde_json::from_str::<Map<String, Value>>(text).is_ok();
        assert_eq!(ours, theirs, "{text:?}");
    }

    #[test]
    fn it_accepts_and_refuses_what_serde_json_does() {
        for text in [
            "{}",
            " { } ",
            r#"{"a":1,"b":[1,2,{"c":null}],"d":true,"e":false,"f":-0.5e-3,"g":"x\"y"}"#,
            r#"{"a":"\ud83d\ude00","b":"\u00e9\n\t\/"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":1e400}"#,
            r#"{"a":1e-400}"#,
            r#"{"a":123456789012345678901234567890}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"[1]"#,
            r#"{"a":1}x"#,
            r#"{"a":1"#,
            "",
            "\u{feff}{}",
        ] {
            same_as_serde(text);
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [125, 126, 127, 128, 129] {
            let text = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            same_as_serde(&text);
        }
    }

    #[test]
    fn members_and_values_are_slices_of_the_text() {
        let read = members(r#"{"s":"a\u0062","n":-1.5,"l":["x",2,"y"],"o":{"k":[]}}"#).unwrap();
        assert!(read[0].is("s"));
        assert_eq!(read[0].value.as_str().unwrap(), "ab");
        assert_eq!(read[1].value, Json::Number("-1.5"));
        let strings: Vec<_> = read[2]
            .value
            .elements()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(strings, ["x", "y"]);
        assert_eq!(read[3].value, Json::Object(r#"{"k":[]}"#));
        assert!(members(r#"{"\u0065xp":1}"#).unwrap()[0].is("exp"));
    }

    #[test]
    fn numeric_dates_are_whole_seconds() {
        let seconds = |t: &str| {
            members(&format!("{{\"a\":{t}}}")).unwrap()[0]
                .value
                .as_seconds()
        };
        assert_eq!(seconds("1700000000"), Some(1_700_000_000));
        assert_eq!(seconds("1700000000.9"), Some(1_700_000_000));
        assert_eq!(seconds("1.7e9"), Some(1_700_000_000));
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds("\"1\""), None);
    }
}
