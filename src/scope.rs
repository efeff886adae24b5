//! Policy: OAuth scopes and the scope requirements a layer enforces.
//!
//! A valid identity that lacks a required scope gets `403 Forbidden` with
//! `error="insufficient_scope"` and the **full** required set in `scope` (MCP 2026-07-28,
//! SEP-2350), so that clients step up in one round trip.
//!
//! ```
//! use mcp_server_auth::scope::{ScopeRequirement, ScopeSet};
//!
//! let granted = ScopeSet::parse("mcp:read mcp:write").unwrap();
//! let need = ScopeRequirement::all_of(["mcp:read"]).unwrap();
//! assert!(need.is_satisfied_by(&granted));
//! assert_eq!(need.challenge_scopes().to_string(), "mcp:read");
//! ```

use std::fmt;

/// The scope that must never be advertised by a resource server (MCP 2026-07-28, SEP-2207):
/// refresh tokens are not a resource requirement.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// What is wrong with a scope or a scope list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// A scope is empty or has characters outside RFC 6749 §3.3 `scope-token`.
    #[error(
        "invalid scope {0:?}: a scope is one or more of the characters %x21 / %x23-5B / %x5D-7E"
    )]
    Invalid(String),
    /// `offline_access` was put where a resource server must not advertise it.
    #[error(
        "`offline_access` must not be advertised by a resource server (MCP 2026-07-28); remove it"
    )]
    OfflineAccess,
    /// A configured scope contains `scope=`, `error=` or `resource_metadata=`, which MCP clients
    /// would misread as a parameter of the challenge that names it.
    #[error(
        "scope {0:?} contains `scope=`, `error=` or `resource_metadata=`, which MCP clients would \
         misread in a challenge; rename it"
    )]
    ChallengeParam(String),
    /// A requirement was built from no scopes at all.
    #[error("a scope requirement needs at least one scope")]
    Empty,
}

/// Whether `s` is an RFC 6749 §3.3 `scope-token`: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_scope_byte)
}

/// Whether `b` may be in a `scope-token` (RFC 6749 §3.3).
fn is_scope_byte(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

/// A set of scopes: sorted, without duplicates, every member a valid `scope-token`.
///
/// Its `Display` is the space-separated form used in the `scope` claim and challenge
/// parameter, in a deterministic (sorted) order.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet {
    /// The scopes, sorted, without duplicates, joined by single spaces: one allocation, however
    /// many scopes (a set is built for every verified token).
    spaced: Box<str>,
    len: usize,
}

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-separated list (runs of spaces are tolerated).
    pub fn parse(list: &str) -> Result<Self, ScopeError> {
        Self::try_from_iter(list.split(' ').filter(|s| !s.is_empty()))
    }

    /// Builds a set from scopes, checking each one.
    pub fn try_from_iter<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<S> = scopes.into_iter().collect();
        for s in &scopes {
            let s = s.as_ref();
            if !is_scope_token(s) {
                return Err(ScopeError::Invalid(s.to_owned()));
            }
            if mimics_challenge_param(s) {
                return Err(ScopeError::ChallengeParam(s.to_owned()));
            }
        }
        Ok(Self::from_valid(scopes.iter().map(AsRef::as_ref).collect()))
    }

    /// Builds a set from scopes, silently dropping any that are not valid `scope-token`s
    /// (for scopes read from tokens, where one odd scope must not void the others).
    pub fn from_iter_lossy<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<S> = scopes.into_iter().collect();
        Self::from_valid(
            scopes
                .iter()
                .map(AsRef::as_ref)
                .filter(|s| is_scope_token(s))
                .collect(),
        )
    }

    /// The set of a space-separated list read from a token, dropping what is not a valid
    /// `scope-token`, as [`from_iter_lossy`](Self::from_iter_lossy). A list that is already
    /// sorted, without duplicates and single-spaced (what most authorization servers send) is
    /// copied as it is.
    pub(crate) fn from_spaced_lossy(list: &str) -> Self {
        // One pass over the bytes (scopes are short: splitting with `memchr` costs more).
        let bytes = list.as_bytes();
        let (mut start, mut previous, mut len) = (0, None::<&[u8]>, 0);
        for end in 0..=bytes.len() {
            if end < bytes.len() && bytes[end] != b' ' {
                if !is_scope_byte(bytes[end]) {
                    return Self::from_iter_lossy(list.split(' '));
                }
                continue;
            }
            let scope = &bytes[start..end];
            if scope.is_empty() || previous.is_some_and(|p| p >= scope) {
                return Self::from_iter_lossy(list.split(' '));
            }
            previous = Some(scope);
            len += 1;
            start = end + 1;
        }
        Self {
            spaced: list.into(),
            len,
        }
    }

    /// The set of `scopes`, each a valid `scope-token`.
    fn from_valid(mut scopes: Vec<&str>) -> Self {
        scopes.sort_unstable();
        scopes.dedup();
        Self {
            spaced: scopes.join(" ").into_boxed_str(),
            len: scopes.len(),
        }
    }

    /// Whether the set contains `scope` exactly.
    pub fn contains(&self, scope: &str) -> bool {
        // Sorted: stop at the first scope past it.
        for s in self.iter() {
            match s.cmp(scope) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Greater => return false,
            }
        }
        false
    }

    /// Whether every scope of `other` is in this set.
    pub fn is_superset(&self, other: &ScopeSet) -> bool {
        other.iter().all(|s| self.contains(s))
    }

    /// The scopes, in sorted order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        Iter {
            rest: self.spaced.split(' '),
            left: self.len,
        }
    }

    /// The number of scopes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fails with [`ScopeError::OfflineAccess`] if the set contains `offline_access`.
    pub fn refuse_offline_access(&self) -> Result<(), ScopeError> {
        if self.contains(OFFLINE_ACCESS) {
            Err(ScopeError::OfflineAccess)
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spaced)
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The scopes of a [`ScopeSet`], in order.
struct Iter<'a> {
    rest: std::str::Split<'a, char>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        // An empty set's text is "", which `split` would give once.
        self.left = self.left.checked_sub(1)?;
        self.rest.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Scopes an identity must hold: all of a set, or any one of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirement {
    scopes: ScopeSet,
    any: bool,
}

impl ScopeRequirement {
    /// Every one of `scopes` is required.
    pub fn all_of<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(scopes, false)
    }

    /// Any one of `scopes` suffices.
    pub fn any_of<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(scopes, true)
    }

    fn new<I, S>(scopes: I, any: bool) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes = ScopeSet::try_from_iter(scopes)?;
        if scopes.is_empty() {
            return Err(ScopeError::Empty);
        }
        scopes.refuse_offline_access()?;
        Ok(Self { scopes, any })
    }

    /// Whether `granted` meets the requirement (exact scope names).
    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        if self.any {
            self.scopes.iter().any(|s| granted.contains(s))
        } else {
            granted.is_superset(&self.scopes)
        }
    }

    /// Whether `granted` meets the requirement when a broader scope may stand for a narrower
    /// one (MCP 2026-07-28: servers MUST account for scope hierarchies).
    pub fn is_satisfied_with(&self, granted: &ScopeSet, hierarchy: &dyn ScopeHierarchy) -> bool {
        let held = |required: &str| {
            granted.contains(required) || granted.iter().any(|g| hierarchy.implies(g, required))
        };
        if self.any {
            self.scopes.iter().any(held)
        } else {
            self.scopes.iter().all(held)
        }
    }

    /// The scopes to name in an `insufficient_scope` challenge. For an all-of requirement this
    /// is the full required set; for an any-of requirement, the whole list of alternatives.
    pub fn challenge_scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// Whether any one scope suffices.
    pub fn is_any_of(&self) -> bool {
        self.any
    }
}

/// A scope hierarchy: whether holding one scope grants another.
///
/// The challenge still names the scopes an operation needs, not the broader ones; the hierarchy
/// only decides whether the scopes a token holds are sufficient.
pub trait ScopeHierarchy: Send + Sync + std::fmt::Debug {
    /// Whether holding `granted` also grants `required` (`granted != required`).
    fn implies(&self, granted: &str, required: &str) -> bool;
}

/// A scope hierarchy given as an explicit map: each scope and the scopes it implies,
/// transitively.
///
/// ```
/// use mcp_server_auth::scope::{ImplicationMap, ScopeRequirement, ScopeSet};
///
/// let hierarchy = ImplicationMap::new()
///     .implies("mcp:admin", ["mcp:write"])
///     .implies("mcp:write", ["mcp:read"]);
/// let need = ScopeRequirement::all_of(["mcp:read"]).unwrap();
/// let granted = ScopeSet::parse("mcp:admin").unwrap();
/// assert!(need.is_satisfied_with(&granted, &hierarchy)); // admin → write → read
/// assert!(!need.is_satisfied_by(&granted)); // not without the hierarchy
/// ```
#[derive(Debug, Clone, Default)]
pub struct ImplicationMap {
    direct: std::collections::HashMap<String, Vec<String>>,
}

impl ImplicationMap {
    /// An empty map (no scope implies another).
    pub fn new() -> Self {
        Self::default()
    }

    /// Holding `broader` grants each of `narrower` (and, transitively, what they imply).
    pub fn implies<I, S>(mut self, broader: impl Into<String>, narrower: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.direct
            .entry(broader.into())
            .or_default()
            .extend(narrower.into_iter().map(Into::into));
        self
    }
}

impl ScopeHierarchy for ImplicationMap {
    fn implies(&self, granted: &str, required: &str) -> bool {
        // Depth-first over the implications, bounded by the number of scopes (cycles are safe).
        let mut seen: Vec<&str> = vec![granted];
        let mut stack: Vec<&str> = vec![granted];
        while let Some(scope) = stack.pop() {
            for next in self.direct.get(scope).into_iter().flatten() {
                if next == required {
                    return true;
                }
                if !seen.contains(&next.as_str()) {
                    seen.push(next);
                    stack.push(next);
                }
            }
        }
        false
    }
}

/// Whether `value` contains `name=` for a parameter the official MCP SDK clients look for
/// anywhere in a `WWW-Authenticate` value (`scope=`, `error=`, `error_description=`,
/// `resource_metadata=`): their regular expressions would read it as that parameter. Configured
/// values that go into challenges (realm, resource URL, scopes) are refused when it is so. It
/// lives here, low in the flow, so that every module above may use it without a cycle.
pub(crate) fn mimics_challenge_param(value: &str) -> bool {
    [
        "scope=",
        "error=",
        "error_description=",
        "resource_metadata=",
    ]
    .iter()
    .any(|p| value.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_list_reads_the_same_whether_or_not_it_is_already_canonical() {
        for list in [
            "",
            "a",
            "a b c",
            "c b a",
            "a a",
            "a  b",
            " a",
            "a ",
            "b\"q a",
            "mcp:read mcp:write",
            "mcp:write mcp:read mcp:read",
        ] {
            let fast = ScopeSet::from_spaced_lossy(list);
            let slow = ScopeSet::from_iter_lossy(list.split(' '));
            assert_eq!(fast, slow, "{list:?}");
            assert_eq!(fast.iter().len(), fast.iter().count(), "{list:?}");
            assert_eq!(fast.to_string(), slow.iter().collect::<Vec<_>>().join(" "));
        }
        let set = ScopeSet::from_spaced_lossy("a b");
        assert!(set.contains("a") && set.contains("b") && !set.contains("c"));
        assert!(!set.contains("") && !set.contains("a b"));
        assert_eq!(ScopeSet::new().iter().next(), None);
    }

    #[test]
    fn parse_sorts_and_dedups() {
        let s = ScopeSet::parse("b  a b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert_eq!(
            ScopeSet::from_iter_lossy(["ok", "bad\"", ""]).to_string(),
            "ok"
        );
    }

    #[test]
    fn requirements() {
        let g = ScopeSet::parse("a b").unwrap();
        assert!(
            ScopeRequirement::all_of(["a", "b"])
                .unwrap()
                .is_satisfied_by(&g)
        );
        assert!(
            !ScopeRequirement::all_of(["a", "c"])
                .unwrap()
                .is_satisfied_by(&g)
        );
        assert!(
            ScopeRequirement::any_of(["c", "b"])
                .unwrap()
                .is_satisfied_by(&g)
        );
        assert_eq!(
            ScopeRequirement::all_of(["offline_access"]).unwrap_err(),
            ScopeError::OfflineAccess
        );
        assert_eq!(
            ScopeRequirement::all_of::<_, &str>([]).unwrap_err(),
            ScopeError::Empty
        );
    }
}
