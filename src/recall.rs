//! Recall: answering at once for a bearer token a verifier accepted before.
//!
//! An MCP client sends the same bearer token on every request for as long as the token lives,
//! and the verifiers remember what they accepted (the JWT cache; the table of static tokens).
//! Yet before a verifier is asked, the layer reads the token: UTF-8, then RFC 6750 `b64token`,
//! each a pass over every byte; then the verifier tags it (a keyed digest, another pass) to
//! look it up. For a token seen a moment ago the first two passes prove nothing new: the same
//! bytes passed them when the token was first accepted.
//!
//! So the layer first offers the raw bytes of a `Bearer` token to
//! [`Verifier::recall`](crate::verifier::Verifier::recall), as [`Presented`] credentials. A
//! verifier answers [`Recall::Accepted`] only for bytes it accepted through `verify` before and
//! would accept again now (so they passed every syntax check then); [`Recall::Refused`] when it
//! would refuse them whatever they are (none of its tokens has this tag; the scheme is not
//! its); [`Recall::Unsure`] otherwise. Only `Accepted` is acted on: the layer then admits the
//! request as if `verify` had accepted it; on anything else it goes the whole way (parse,
//! check, `verify`). `Refused` lets a combination ([`Or`](crate::verifier::Or)) ask its second
//! verifier. The tag computed here is kept for the request, so `verify` does not compute it
//! again when recall finds nothing.
//!
//! What stays whole on this path: the `Authorization` header is read as on the other (one
//! field only, its size limit, the scheme case-insensitive), and an identity bound to a key or
//! a certificate is never admitted by recall: the layer goes the whole way for it, so that its
//! proof or certificate is checked. `Unsure` is always a safe answer, and the default. Recall
//! stands in for the `verify` of every verifier on the way: a wrapper forwards it only if its
//! own `verify` adds nothing for an unbound identity (as `Or`, `CertificateBound` and, but in
//! `required` mode, `Dpop` do).
//!
//! ```
//! use mcp_server_auth::verifier::Verifier;
//! use mcp_server_auth::recall::{Presented, Recall};
//! use mcp_server_auth::bearer::StaticBearer;
//! use mcp_server_auth::credentials::Scheme;
//!
//! let tokens = StaticBearer::new([("ci", "c2VjcmV0LXRva2VuLWZvci1jaQ")]).unwrap();
//! let known = Presented::new(Scheme::Bearer, b"c2VjcmV0LXRva2VuLWZvci1jaQ");
//! assert!(matches!(tokens.recall(&known), Recall::Accepted(info) if info.subject() == "ci"));
//! let unknown = Presented::new(Scheme::Bearer, b"not-one-of-ours");
//! assert!(matches!(tokens.recall(&unknown), Recall::Refused));
//! ```

use std::fmt;

use crate::{
    credentials::Scheme,
    identity::AuthInfo,
    secret::{SecretTag, TagKey, TagMemo},
};

/// What a verifier remembers of [`Presented`] credentials.
#[derive(Debug)]
#[non_exhaustive]
pub enum Recall {
    /// It accepted exactly these credentials before, and would accept them now, as this
    /// identity.
    Accepted(AuthInfo),
    /// It would refuse these credentials, whatever they are.
    Refused,
    /// It cannot say without the whole check: the layer parses the credentials and asks
    /// [`Verifier::verify`](crate::verifier::Verifier::verify).
    Unsure,
}

/// The `Authorization` credentials of a request before the layer has parsed them: the scheme
/// and the raw bytes after it (not checked to be UTF-8 or a `b64token`). `Debug` never shows
/// them.
pub struct Presented<'a> {
    scheme: Scheme,
    credentials: &'a [u8],
    tag: Tag<'a>,
}

/// The tag of the credentials: borrowed from the layer, which keeps it for `verify`; or owned.
enum Tag<'a> {
    Kept(&'a TagMemo),
    Own(TagMemo),
}

impl<'a> Presented<'a> {
    /// `credentials` presented with `scheme` (for calling a verifier's
    /// [`recall`](crate::verifier::Verifier::recall) outside the layer).
    pub fn new(scheme: Scheme, credentials: &'a [u8]) -> Self {
        Self {
            scheme,
            credentials,
            tag: Tag::Own(TagMemo::default()),
        }
    }

    /// As the layer presents them: the tag, once computed, is kept in `tag` for the request.
    pub(crate) fn kept(scheme: Scheme, credentials: &'a [u8], tag: &'a TagMemo) -> Self {
        Self {
            scheme,
            credentials,
            tag: Tag::Kept(tag),
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The raw credentials: everything after the scheme and the spaces that follow it.
    pub fn credentials(&self) -> &'a [u8] {
        self.credentials
    }

    /// The credentials' tag under the process's token key, computed once.
    pub(crate) fn tag(&self) -> SecretTag {
        let memo = match &self.tag {
            Tag::Kept(memo) => memo,
            Tag::Own(memo) => memo,
        };
        memo.get_or(|| TagKey::process().tag(self.credentials))
    }
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("scheme", &self.scheme)
            .field("credentials", &"<redacted>")
            .finish()
    }
}
