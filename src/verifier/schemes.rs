//! The `Authorization` schemes a verifier declares, from which the layer's challenges are built.

/// The `Authorization` schemes a verifier understands: `Bearer`, `Basic`, `DPoP`, and names of
/// your own. The layer parses credentials of these schemes and challenges with them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schemes {
    bearer: bool,
    basic: bool,
    dpop: bool,
    custom: Vec<Box<str>>,
    proxy: bool,
    /// The `algs` of the `DPoP` challenge (RFC 9449 §7.1), space-separated.
    dpop_algs: Option<Box<str>>,
}

impl Schemes {
    /// Nothing at all: a verifier that accepts no request (an absent one, say). A layer refuses
    /// to be built around it ([`BuildError::NoScheme`](crate::BuildError::NoScheme)); a verifier
    /// that reads credentials elsewhere than `Authorization` declares [`Schemes::PROXY`].
    pub const NONE: Self = Self {
        bearer: false,
        basic: false,
        dpop: false,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };
    /// `Bearer` (RFC 6750).
    pub const BEARER: Self = Self {
        bearer: true,
        basic: false,
        dpop: false,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };
    /// `Basic` (RFC 7617).
    pub const BASIC: Self = Self {
        bearer: false,
        basic: true,
        dpop: false,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };
    /// `DPoP` (RFC 9449).
    pub const DPOP: Self = Self {
        bearer: false,
        basic: false,
        dpop: true,
        custom: Vec::new(),
        proxy: false,
        dpop_algs: None,
    };

    /// No `Authorization` scheme: credentials that something in front of this server adds, in
    /// a header of its own, rather than the client (an identity-aware proxy's signed assertion,
    /// see [`crate::assertion`]; a client certificate a TLS terminator forwards). No
    /// `WWW-Authenticate` challenge can ask a client for them, and nothing a client does can fix
    /// their absence. So when no `Authorization` scheme is understood too, the layer refuses a
    /// request whose verifier answers [`Rejection::NoCredentials`](super::Rejection::NoCredentials) or [`Rejection::Invalid`](super::Rejection::Invalid)
    /// with `403` and a JSON body saying it did not come through the proxy, without a challenge
    /// (RFC 9110 §15.5.4); with other schemes, their `401` challenges as usual.
    pub const PROXY: Self = Self {
        bearer: false,
        basic: false,
        dpop: false,
        custom: Vec::new(),
        proxy: true,
        dpop_algs: None,
    };

    /// A scheme of your own, named `name` (a token, RFC 9110 §11.1; compared
    /// case-insensitively). Its credentials reach the verifier as [`Credentials::Other`](super::Credentials::Other), and the
    /// `401` challenges it with `name realm="…"`. A name that is not a token, or that names one
    /// of the schemes above, means that scheme's constant instead.
    pub fn custom(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "bearer" => Self::BEARER,
            "basic" => Self::BASIC,
            "dpop" => Self::DPOP,
            _ if is_token(name) => Self {
                custom: vec![name.into()],
                ..Self::default()
            },
            _ => Self::NONE,
        }
    }

    /// `DPoP` (RFC 9449), with the proof algorithms accepted: its challenge names them in
    /// `algs` (RFC 9449 §7.1). Names that are not tokens are left out.
    pub fn dpop_with_algorithms<I, S>(algorithms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let algs: Vec<String> = algorithms
            .into_iter()
            .filter(|a| is_token(a.as_ref()))
            .map(|a| a.as_ref().to_owned())
            .collect();
        Self {
            dpop_algs: (!algs.is_empty()).then(|| algs.join(" ").into()),
            ..Self::DPOP
        }
    }

    /// The same set without `Bearer` (a layer that requires DPoP-bound tokens).
    pub fn without_bearer(mut self) -> Self {
        self.bearer = false;
        self
    }

    /// The proof algorithms the `DPoP` challenge names (`algs`), space-separated, if given.
    pub fn dpop_algorithms(&self) -> Option<&str> {
        self.dpop_algs.as_deref()
    }

    /// Both sets together.
    pub fn union(mut self, other: Self) -> Self {
        if self.dpop_algs.is_none() {
            self.dpop_algs = other.dpop_algs;
        }
        self.bearer |= other.bearer;
        self.basic |= other.basic;
        self.dpop |= other.dpop;
        self.proxy |= other.proxy;
        for name in other.custom {
            if !self.has_custom(&name) {
                self.custom.push(name);
            }
        }
        self
    }

    /// Whether `Bearer` is understood.
    pub const fn bearer(&self) -> bool {
        self.bearer
    }

    /// Whether `Basic` is understood.
    pub const fn basic(&self) -> bool {
        self.basic
    }

    /// Whether `DPoP` is understood.
    pub const fn dpop(&self) -> bool {
        self.dpop
    }

    /// The schemes of your own, in the order they were added.
    pub fn custom_names(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(|n| &**n)
    }

    /// Whether a scheme of your own named `name` (case-insensitively) is understood.
    pub fn has_custom(&self, name: &str) -> bool {
        self.custom.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether credentials added in front of this server are read ([`Schemes::PROXY`]).
    pub const fn proxy(&self) -> bool {
        self.proxy
    }

    /// Whether some `Authorization` scheme is understood: one a `401` can challenge with.
    pub fn has_authorization_scheme(&self) -> bool {
        self.bearer || self.basic || self.dpop || !self.custom.is_empty()
    }

    /// Whether nothing at all is understood: no `Authorization` scheme, and no
    /// [`Schemes::PROXY`] credentials.
    pub fn is_empty(&self) -> bool {
        !self.has_authorization_scheme() && !self.proxy
    }
}

/// Whether `s` is an RFC 9110 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
