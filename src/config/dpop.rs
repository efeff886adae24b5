//! `MCP_AUTH_DPOP`, `MCP_AUTH_DPOP_ALGORITHMS`, `MCP_AUTH_DPOP_MAX_AGE_SECS` and
//! `MCP_AUTH_DPOP_NONCE_KEY`: DPoP-bound tokens (RFC 9449, see [`crate::dpop`]).
//!
//! Why on by default: an authorization server may bind tokens to a client key at any time (the
//! TypeScript SDK's client asks for it when the server supports it), and a resource server
//! that does not understand DPoP answers such a client with a plain `Bearer` challenge it
//! cannot satisfy. So whenever tokens are checked by a verifier that can see a binding (JWT
//! mode, `MCP_AUTH_ISSUER_URL`, or introspection), DPoP is `allowed`: bound tokens need their
//! proofs, unbound bearer tokens still work. `required` refuses every unbound token (static
//! tokens included, so they cannot be combined with it); `off` leaves the verifiers alone
//! (bound tokens are still refused as bearer tokens).
//!
//! Proofs are remembered, so that each is accepted once, in the store of the throttle: in
//! memory, or with `MCP_AUTH_REDIS_URL` in Redis, shared by every replica naming it.
//!
//! `MCP_AUTH_DPOP_NONCE_KEY` turns server nonces on (RFC 9449 §8–9): at least 32 bytes written
//! in hex (64 hex digits or more, e.g. the output of `openssl rand -hex 32`), the same at every
//! replica. It is never logged nor shown by `Debug`, and errors do not repeat it.
//!
//! ```
//! # #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))] {
//! use mcp_server_auth::config::EnvConfig;
//!
//! let config = EnvConfig::from_vars([
//!     ("MCP_AUTH_ISSUER_URL", "https://auth.example.com"),
//!     ("MCP_AUTH_DPOP", "required"),
//!     ("MCP_AUTH_DPOP_ALGORITHMS", "ES256,EdDSA"),
//!     ("MCP_AUTH_DPOP_NONCE_KEY", &"5a".repeat(32)),
//! ])
//! .unwrap();
//! let options = config.dpop_options().unwrap();
//! assert!(options.requires_bound_tokens() && options.nonces_required());
//! assert_eq!(options.algorithm_names(), ["ES256", "EdDSA", "Ed25519"]);
//! # }
//! ```

use super::{ConfigError, EnvConfig};
use crate::resource::ResourceUrl;

/// The variables read here.
pub(super) const VARS: [&str; 4] = [
    "MCP_AUTH_DPOP",
    "MCP_AUTH_DPOP_ALGORITHMS",
    "MCP_AUTH_DPOP_MAX_AGE_SECS",
    "MCP_AUTH_DPOP_NONCE_KEY",
];

fn error(var: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Dpop {
        var,
        reason: reason.to_string(),
    }
}

/// What the token verifiers of the configuration are: whether one can see a binding (JWT or
/// introspection), and whether static tokens are configured. (Read only with a crypto backend:
/// without one there is no DPoP.)
#[cfg_attr(
    not(any(feature = "aws-lc-rs", feature = "rust-crypto")),
    allow(dead_code)
)]
pub(super) struct Verifiers {
    pub(super) bound_tokens: bool,
    pub(super) static_tokens: bool,
}

/// DPoP settings read from the environment: the options, when DPoP is on. `Debug` never shows
/// the nonce key.
#[derive(Clone, Debug, Default)]
pub(super) struct DpopEnv {
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    options: Option<crate::dpop::DpopOptions>,
}

/// Without a crypto backend there is no DPoP: setting a variable is an error.
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
pub(super) fn read(
    mut take: impl FnMut(&str) -> Option<String>,
    _: &ResourceUrl,
    _: Verifiers,
) -> Result<DpopEnv, ConfigError> {
    match VARS.into_iter().find(|v| take(v).is_some()) {
        Some(var) => Err(error(
            var,
            "DPoP needs a crypto backend: build with the `aws-lc-rs` or `rust-crypto` feature",
        )),
        None => Ok(DpopEnv::default()),
    }
}

/// Reads the DPoP variables through `take`.
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
pub(super) fn read(
    mut take: impl FnMut(&str) -> Option<String>,
    resource: &ResourceUrl,
    verifiers: Verifiers,
) -> Result<DpopEnv, ConfigError> {
    use std::time::Duration;

    use crate::dpop::{DpopOptions, Mode};

    let [mode, algorithms, max_age, nonce_key] = VARS.map(&mut take);
    let explicit = mode.is_some();
    let mode = match mode {
        Some(m) => m.parse::<Mode>().map_err(|e| error(VARS[0], e))?,
        None if verifiers.bound_tokens => Mode::Allowed,
        None => Mode::Off,
    };
    if mode == Mode::Off {
        let set = [&algorithms, &max_age, &nonce_key];
        if let Some(i) = set.iter().position(|v| v.is_some()) {
            return Err(error(
                VARS[i + 1],
                "DPoP is off: set MCP_AUTH_DPOP=allowed or required, with MCP_AUTH_ISSUER_URL \
                 or token introspection, or remove this variable",
            ));
        }
        return Ok(DpopEnv { options: None });
    }
    if !verifiers.bound_tokens {
        let var = if explicit { VARS[0] } else { VARS[1] };
        return Err(error(
            var,
            "DPoP needs a verifier of OAuth access tokens: set MCP_AUTH_ISSUER_URL or \
             MCP_AUTH_INTROSPECTION_*",
        ));
    }
    if mode == Mode::Required && verifiers.static_tokens {
        return Err(error(
            VARS[0],
            "required refuses every token not bound to a DPoP key, static bearer tokens \
             included: remove MCP_AUTH_BEARER_TOKEN(S)(_FILE), or use allowed",
        ));
    }
    let mut builder = DpopOptions::builder(resource).mode(mode);
    if let Some(list) = &algorithms {
        builder = builder.algorithms(list.split(',').filter(|a| !a.trim().is_empty()));
    }
    if let Some(secs) = max_age {
        let secs = secs
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=300).contains(s))
            .ok_or_else(|| error(VARS[2], "use a whole number of seconds from 1 to 300"))?;
        builder = builder.max_age(Duration::from_secs(secs));
    }
    if let Some(hex) = nonce_key {
        let key = decode_hex(hex.trim())
            .filter(|k| k.len() >= 32)
            .ok_or_else(|| {
                error(
                    VARS[3],
                    "use at least 32 random bytes written in hex (64 hex digits or more), e.g. \
                     the output of `openssl rand -hex 32`",
                )
            })?;
        builder = builder.nonce_key(&key);
    }
    let options = builder.build().map_err(|e| {
        use crate::dpop::DpopConfigError as E;
        match e {
            E::Algorithm(_) | E::NoAlgorithms => error(VARS[1], e),
            E::MaxAge(_) => error(VARS[2], e),
            E::NonceKey => error(VARS[3], e),
            _ => error("MCP_AUTH_RESOURCE_URL", e),
        }
    })?;
    Ok(DpopEnv {
        options: Some(options),
    })
}

/// `hex` decoded, if it is an even number of hex digits.
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// The verifier of bearer and DPoP tokens: DPoP around `V` (off when DPoP is).
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
pub(super) type Wrapped<V> = crate::dpop::Dpop<V, super::EnvStore>;
/// The verifier of bearer tokens (no DPoP without a crypto backend).
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
pub(super) type Wrapped<V> = V;

impl EnvConfig {
    /// The DPoP options (`MCP_AUTH_DPOP*`), when DPoP is on: by default, in JWT and
    /// introspection modes.
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    pub fn dpop_options(&self) -> Option<&crate::dpop::DpopOptions> {
        self.dpop.options.as_ref()
    }

    /// `inner` with DPoP around it, proofs remembered in the throttle's store.
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    pub(super) async fn wrap_dpop<V: crate::verifier::Verifier>(
        &self,
        inner: V,
    ) -> Result<Wrapped<V>, ConfigError> {
        use crate::dpop::{Dpop, DpopOptions, Mode};
        Ok(match &self.dpop.options {
            Some(options) => Dpop::with_store(inner, options.clone(), self.env_store().await?),
            None => {
                let off = DpopOptions::builder(&self.resource_url)
                    .mode(Mode::Off)
                    .build()
                    .map_err(|e| error("MCP_AUTH_RESOURCE_URL", e))?;
                let unused = super::EnvStore::Memory(crate::store::MemoryStore::with_capacity(1));
                Dpop::with_store(inner, off, unused)
            }
        })
    }

    /// `inner`: no DPoP without a crypto backend.
    #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
    pub(super) async fn wrap_dpop<V>(&self, inner: V) -> Result<Wrapped<V>, ConfigError> {
        Ok(inner)
    }

    /// The metadata fields of DPoP (RFC 9449 §5.1 as RFC 9728 §2 lists them), when it is on.
    pub(super) fn dpop_metadata(
        &self,
        builder: crate::metadata::MetadataBuilder,
    ) -> crate::metadata::MetadataBuilder {
        #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
        if let Some(o) = &self.dpop.options {
            return builder
                .dpop_signing_alg_values_supported(o.algorithm_names())
                .dpop_bound_access_tokens_required(o.requires_bound_tokens());
        }
        builder
    }
}

#[cfg(all(test, any(feature = "aws-lc-rs", feature = "rust-crypto")))]
mod tests {
    use super::*;
    use crate::dpop::Mode;

    const ISSUER: (&str, &str) = ("MCP_AUTH_ISSUER_URL", "https://auth.example.com");
    const TOKEN: (&str, &str) = ("MCP_AUTH_BEARER_TOKEN", "c2VjcmV0LXRva2VuLWZvci1jaQ");

    fn config(vars: &[(&str, &str)]) -> Result<EnvConfig, ConfigError> {
        EnvConfig::from_vars(vars.iter().copied())
    }

    /// The variable an error names, and its message.
    fn err(vars: &[(&str, &str)]) -> (&'static str, String) {
        match config(vars).unwrap_err() {
            e @ ConfigError::Dpop { var, .. } => (var, e.to_string()),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn dpop_is_allowed_with_a_token_verifier_and_off_without() {
        let c = config(&[ISSUER]).unwrap();
        let o = c.dpop_options().unwrap();
        assert_eq!(o.mode(), Mode::Allowed);
        assert!(!o.nonces_required());
        assert_eq!(
            o.algorithm_names(),
            ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"]
        );
        let m = c.metadata().unwrap().unwrap();
        let doc = serde_json::to_value(&m).unwrap();
        // `false` is the default of the field, left out.
        assert_ne!(doc["dpop_bound_access_tokens_required"], true);
        assert_eq!(doc["dpop_signing_alg_values_supported"][0], "ES256");
        assert!(config(&[TOKEN]).unwrap().dpop_options().is_none());
        let off = config(&[ISSUER, ("MCP_AUTH_DPOP", "OFF")]).unwrap();
        assert!(off.dpop_options().is_none());
        let doc = serde_json::to_value(off.metadata().unwrap().unwrap()).unwrap();
        assert!(doc.get("dpop_signing_alg_values_supported").is_none());
    }

    #[test]
    fn the_variables_set_mode_algorithms_age_and_nonces() {
        let key = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789";
        let c = config(&[
            ISSUER,
            ("MCP_AUTH_DPOP", "required"),
            ("MCP_AUTH_DPOP_ALGORITHMS", " EdDSA , PS256"),
            ("MCP_AUTH_DPOP_MAX_AGE_SECS", "60"),
            ("MCP_AUTH_DPOP_NONCE_KEY", key),
        ])
        .unwrap();
        let o = c.dpop_options().unwrap();
        assert!(o.requires_bound_tokens() && o.nonces_required());
        assert_eq!(o.algorithm_names(), ["EdDSA", "Ed25519", "PS256"]);
        assert!(format!("{o:?}").contains("60s"));
        assert!(!format!("{c:?}").contains(key) && !format!("{c:?}").contains("0123"));
    }

    #[test]
    fn errors_name_the_variable_and_never_repeat_the_nonce_key() {
        let mode = ("MCP_AUTH_DPOP", "optional");
        assert_eq!(err(&[ISSUER, mode]).0, "MCP_AUTH_DPOP");
        for algs in ["ES256,HS256", "none", " , "] {
            let (var, message) = err(&[ISSUER, ("MCP_AUTH_DPOP_ALGORITHMS", algs)]);
            assert_eq!(var, "MCP_AUTH_DPOP_ALGORITHMS", "{algs}: {message}");
            assert!(
                message.starts_with("MCP_AUTH_DPOP_ALGORITHMS: "),
                "{message}"
            );
        }
        for age in ["0", "301", "60s"] {
            let (var, _) = err(&[ISSUER, ("MCP_AUTH_DPOP_MAX_AGE_SECS", age)]);
            assert_eq!(var, "MCP_AUTH_DPOP_MAX_AGE_SECS", "{age}");
        }
        let short = "ab".repeat(31);
        let not_hex = "zz".repeat(32);
        for key in [short.as_str(), not_hex.as_str(), "abc"] {
            let (var, message) = err(&[ISSUER, ("MCP_AUTH_DPOP_NONCE_KEY", key)]);
            assert_eq!(var, "MCP_AUTH_DPOP_NONCE_KEY");
            assert!(!message.contains(key), "{message}");
        }
        // DPoP needs a token verifier; required excludes static tokens; off takes no settings.
        assert_eq!(err(&[("MCP_AUTH_DPOP", "allowed")]).0, "MCP_AUTH_DPOP");
        assert_eq!(
            err(&[ISSUER, TOKEN, ("MCP_AUTH_DPOP", "required")]).0,
            "MCP_AUTH_DPOP"
        );
        assert!(config(&[ISSUER, TOKEN, ("MCP_AUTH_DPOP", "allowed")]).is_ok());
        let (var, _) = err(&[TOKEN, ("MCP_AUTH_DPOP_MAX_AGE_SECS", "60")]);
        assert_eq!(var, "MCP_AUTH_DPOP_MAX_AGE_SECS");
        let (var, _) = err(&[
            ISSUER,
            ("MCP_AUTH_DPOP", "off"),
            ("MCP_AUTH_DPOP_NONCE_KEY", "ab"),
        ]);
        assert_eq!(var, "MCP_AUTH_DPOP_NONCE_KEY");
    }
}
