//! The token file: its syntax, its errors (which name a line by its number, never its text),
//! and what of its metadata tells that it changed.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hasher},
    io::Read as _,
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::{
    bearer::{StaticBearer, StaticTokenError, check_token, parse_entry},
    scope::ScopeSet,
};

/// The largest token file read: far more than any list of tokens, far less than a mistake
/// (a path to a log, a device) could make the server hold.
pub const MAX_TOKEN_FILE_BYTES: u64 = 1 << 20;

/// What is wrong with the token file. No variant holds a line's text: a line is named by its
/// number, since any part of it might be a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file cannot be read.
    #[error("cannot read the bearer token file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (the operating system's message).
        reason: String,
    },
    /// The file is larger than [`MAX_TOKEN_FILE_BYTES`].
    #[error(
        "the bearer token file {} is larger than {MAX_TOKEN_FILE_BYTES} bytes: is it the right file?",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line is not acceptable.
    #[error("the bearer token file {}, line {line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, counted from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// The file has no token (only blank lines and comments).
    #[error(
        "the bearer token file {} has no token: write one `name:token [scope …]` per line \
         (to revoke every token, put a new one in)",
        path.display()
    )]
    NoTokens {
        /// The file.
        path: PathBuf,
    },
}

/// What is wrong with one line of the token file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// Not `name:token [scope …]`: the name or the token is empty.
    #[error("malformed: write `name:token [scope …]` (or `#` for a comment)")]
    Malformed,
    /// Not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The name is empty or has control characters.
    #[error("the name is empty or has control characters")]
    InvalidName,
    /// The token has characters no client could send (outside RFC 6750 `b64token`).
    #[error(
        "the token has characters outside RFC 6750 b64token (letters, digits, - . _ ~ + / and \
         trailing =); no client could send it"
    )]
    InvalidCharacters,
    /// The token is shorter than [`MIN_TOKEN_BYTES`](crate::bearer::MIN_TOKEN_BYTES).
    #[error(
        "the token has {0} bytes; use at least {min} (32 random bytes, base64url-encoded, is a \
         good choice)",
        min = crate::bearer::MIN_TOKEN_BYTES
    )]
    TooShort(usize),
    /// The token is also on an earlier line.
    #[error("the token is also on line {0}: each token once")]
    Duplicate(usize),
    /// A scope is malformed (RFC 6749 §3.3 `scope-token`).
    #[error("a scope is malformed (RFC 6749 §3.3: printable ASCII without space, \" or \\)")]
    Scope,
}

/// Parses a token file: one `name:token [scope …]` per line, a bare `token` being named
/// `token-<line>` (the entry syntax of `MCP_AUTH_BEARER_TOKENS`, with the token's scopes after
/// it); blank lines and lines starting with `#` are skipped.
pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<StaticBearer, TokenFileError> {
    let error = |line, problem| TokenFileError::Line {
        path: path.to_owned(),
        line,
        problem,
    };
    let mut builder = StaticBearer::builder();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let number = i + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| error(number, LineProblem::NotUtf8))?
            .trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) =
            parse_entry(line, number).ok_or(error(number, LineProblem::Malformed))?;
        let (token, scopes) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        check_token(&name, token.as_bytes()).map_err(|e| {
            error(
                number,
                match e {
                    StaticTokenError::TooShort { len, .. } => LineProblem::TooShort(len),
                    StaticTokenError::InvalidCharacters { .. } => LineProblem::InvalidCharacters,
                    StaticTokenError::Empty { .. } => LineProblem::Malformed,
                    _ => LineProblem::InvalidName,
                },
            )
        })?;
        if let Some(first) = seen.insert(token, number) {
            return Err(error(number, LineProblem::Duplicate(first)));
        }
        let scopes =
            ScopeSet::parse(scopes.trim()).map_err(|_| error(number, LineProblem::Scope))?;
        builder = builder.token_with_scopes(name, token, scopes);
    }
    if seen.is_empty() {
        return Err(TokenFileError::NoTokens {
            path: path.to_owned(),
        });
    }
    // Every check `build` makes was made above, line by line.
    builder.build().map_err(|_| TokenFileError::NoTokens {
        path: path.to_owned(),
    })
}

/// What tells that the file changed without reading it: its modification time, length and
/// (Unix) inode, which changes when the file is replaced by a rename, as editors and
/// orchestrators' secret mounts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        }
    }
}

/// The file's bytes as read, with its stamp and a digest of its content.
pub(crate) struct Contents {
    pub(crate) bytes: Vec<u8>,
    pub(crate) stamp: Stamp,
    pub(crate) digest: u64,
    /// The permission bits, when group or others may read the file (Unix).
    pub(crate) readable_by_others: Option<u32>,
}

/// Reads the file (at most [`MAX_TOKEN_FILE_BYTES`]).
pub(crate) fn read(path: &Path) -> Result<Contents, TokenFileError> {
    let failed = |e: std::io::Error| TokenFileError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let metadata = file.metadata().map_err(failed)?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(TokenFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let mut hasher = DefaultHasher::new();
    hasher.write(&bytes);
    #[cfg(unix)]
    let readable_by_others = {
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    };
    #[cfg(not(unix))]
    let readable_by_others = None;
    Ok(Contents {
        bytes,
        stamp: Stamp::of(&metadata),
        digest: hasher.finish(),
        readable_by_others,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::{AuthRequest, Credentials, Verdict, Verifier};

    const A: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWE";
    const B: &str = "YmJiYmJiYmJiYmJiYmJiYmJiYmI";

    fn granted(v: &StaticBearer, token: &str) -> Option<(String, String)> {
        match v.verify(&AuthRequest::credentials_only(Credentials::Bearer(token))) {
            Verdict::Ready(Ok(i)) => Some((i.subject().to_owned(), i.scopes().to_string())),
            _ => None,
        }
    }

    fn problem(text: &str) -> (usize, LineProblem) {
        match parse(text.as_bytes(), Path::new("t")).unwrap_err() {
            TokenFileError::Line { line, problem, .. } => (line, problem),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn a_file_names_its_tokens_and_their_scopes_and_skips_comments_and_blank_lines() {
        let text = format!(
            "# laptop, rotated 2025-01\n\n  laptop : {A}  mcp:read   mcp:write \r\n\t# old\n{B}\n"
        );
        let v = parse(text.as_bytes(), Path::new("t")).unwrap();
        assert_eq!(v.len(), 2);
        let laptop = granted(&v, A).unwrap();
        assert_eq!(laptop, ("laptop".into(), "mcp:read mcp:write".into()));
        // A bare token is named by its line, as one of `MCP_AUTH_BEARER_TOKENS` by position.
        assert_eq!(granted(&v, B).unwrap(), ("token-5".into(), String::new()));
        assert_eq!(granted(&v, "bm9wZW5vcGVub3Blbm9wZW5vcGU"), None);
    }

    #[test]
    fn each_wrong_line_is_named_by_its_number_and_never_by_its_text() {
        let cases = [
            (format!("a:{A}\n:{B}\n"), 2, LineProblem::Malformed),
            ("a:\n".to_owned(), 1, LineProblem::Malformed),
            ("a:c2hvcnQ\n".to_owned(), 1, LineProblem::TooShort(7)),
            (
                format!("a:{A}\n\nb:{A}x!y\n"),
                3,
                LineProblem::InvalidCharacters,
            ),
            (format!("a:{A}\nb:{A}\n"), 2, LineProblem::Duplicate(1)),
            (
                format!("a:{A} mcp:read bad\"scope\n"),
                1,
                LineProblem::Scope,
            ),
            (format!("a\u{7}b:{A}\n"), 1, LineProblem::InvalidName),
        ];
        for (text, line, expected) in cases {
            assert_eq!(problem(&text), (line, expected), "{text:?}");
            let message = parse(text.as_bytes(), Path::new("/etc/mcp/tokens"))
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(&format!("/etc/mcp/tokens, line {line}:")),
                "{message}"
            );
            assert!(
                !message.contains(A) && !message.contains("c2hvcnQ"),
                "{message}"
            );
        }
        let mut bytes = format!("a:{A}\n").into_bytes();
        bytes.extend_from_slice(b"b:\xff\xfe\n");
        match parse(&bytes, Path::new("t")).unwrap_err() {
            TokenFileError::Line { line, problem, .. } => {
                assert_eq!((line, problem), (2, LineProblem::NotUtf8));
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn a_file_without_tokens_is_refused() {
        for text in ["", "# only a comment\n\n   \n"] {
            assert!(matches!(
                parse(text.as_bytes(), Path::new("t")),
                Err(TokenFileError::NoTokens { .. })
            ));
        }
    }
}
