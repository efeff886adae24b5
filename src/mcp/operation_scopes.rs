//! Which scopes each MCP operation needs: [`OperationScopes`].
//!
//! ```
//! use mcp_server_auth::mcp::{OperationScopes, Operation};
//!
//! let policy = OperationScopes::builder()
//!     .tool("echo", ["mcp:read"])
//!     .tool("write_note", ["mcp:write"])
//!     .default_scopes(["mcp:read"]) // every other tool, prompt, resource or method
//!     .build()
//!     .unwrap();
//! let needs = |op: &Operation| policy.requirement(op).map(|r| r.challenge_scopes().to_string());
//! assert_eq!(needs(&Operation::tool("write_note")).as_deref(), Some("mcp:write"));
//! assert_eq!(needs(&Operation::tool("other")).as_deref(), Some("mcp:read"));
//! // Discovery and lifecycle methods need only what the auth layer already requires.
//! assert_eq!(needs(&Operation::new("tools/list", None::<String>)), None);
//! ```

use std::{
    collections::{HashMap, hash_map::Entry},
    fmt,
};

use super::operation::{NameKind, Operation};
use crate::scope::{ScopeError, ScopeRequirement, ScopeSet};

/// What is wrong with an [`OperationScopes`] configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationScopesError {
    /// A scope is not a valid scope token, or is `offline_access`.
    #[error("scopes for {target}: {source}")]
    Scope {
        /// The operation the scopes were configured for.
        target: String,
        /// What is wrong.
        source: ScopeError,
    },
    /// An entry of a `name=scope …` list is malformed.
    #[error(
        "tool scope entry {0:?} is not `name=scope [scope …]` (for example `write_note=mcp:write`)"
    )]
    Entry(String),
    /// The same operation was configured twice.
    #[error("scopes for {0} are configured twice")]
    Duplicate(String),
    /// Per-name scopes were set for a method other than `tools/call`, `prompts/get` or
    /// `resources/read`.
    #[error(
        "per-name scopes for {0} cannot be set: set them for tools/call, prompts/get or \
         resources/read, which also cover resources/subscribe, resources/unsubscribe and \
         completion/complete"
    )]
    NameMethod(String),
}

/// The methods that stay callable with the scopes the auth layer requires (the baseline),
/// unless configured otherwise: the handshake, discovery and listing methods, and
/// notifications. A client must be able to learn what a server offers before it asks for more.
pub fn is_baseline_method(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
    ) || method.starts_with("notifications/")
}

/// The scopes each MCP operation needs, on top of what the auth layer already requires.
///
/// A request's requirement is found in this order:
/// 1. the entry for the tool, prompt or resource it names: its tool (`tools/call`), its prompt
///    (`prompts/get`, and `completion/complete` for a `ref/prompt`) or its resource URI
///    (`resources/read`, `resources/subscribe`, `resources/unsubscribe`, and
///    `completion/complete` for a `ref/resource`). A prompt or resource entry thus covers
///    every method that names it: a caller without its scopes can neither read it, nor
///    subscribe to it, nor ask for completions of its arguments;
/// 2. the entry for its method;
/// 3. nothing more for the [baseline methods](is_baseline_method) (`initialize`, `tools/list`,
///    …) and for messages without a method (a client's responses);
/// 4. the [default](OperationScopesBuilder::default_scopes), if one is set; otherwise nothing more.
#[derive(Clone, Default)]
pub struct OperationScopes {
    /// Method → name → requirement.
    names: HashMap<String, HashMap<String, ScopeRequirement>>,
    methods: HashMap<String, Option<ScopeRequirement>>,
    default: Option<ScopeRequirement>,
}

impl fmt::Debug for OperationScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self
            .names
            .iter()
            .flat_map(|(m, names)| {
                names
                    .iter()
                    .map(move |(n, r)| format!("{m} {n:?}: {}", r.challenge_scopes()))
            })
            .collect();
        names.sort();
        let mut methods: Vec<_> = self
            .methods
            .iter()
            .map(|(m, r)| {
                format!(
                    "{m}: {}",
                    r.as_ref()
                        .map_or("-".to_owned(), |r| r.challenge_scopes().to_string())
                )
            })
            .collect();
        methods.sort();
        f.debug_struct("OperationScopes")
            .field("names", &names)
            .field("methods", &methods)
            .field(
                "default",
                &self
                    .default
                    .as_ref()
                    .map(|r| r.challenge_scopes().to_string()),
            )
            .finish()
    }
}

impl OperationScopes {
    /// Starts an empty policy: every operation needs only what the auth layer requires.
    pub fn builder() -> OperationScopesBuilder {
        OperationScopesBuilder {
            policy: OperationScopes::default(),
            error: None,
        }
    }

    /// Parses a list of tool entries, as in `MCP_AUTH_TOOL_SCOPES`:
    /// `echo=mcp:read,write_note=mcp:write mcp:read`. Each entry is a tool name, `=`, and
    /// one or more space-separated scopes, all of which the tool needs. An entry whose name
    /// contains `/` names a method instead (`resources/read=files:read`), and the name `*`
    /// sets the default.
    pub fn parse(list: &str) -> Result<Self, OperationScopesError> {
        let mut builder = Self::builder();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, scopes) = entry
                .split_once('=')
                .map(|(n, s)| (n.trim(), s))
                .filter(|(n, s)| !n.is_empty() && !s.trim().is_empty())
                .ok_or_else(|| OperationScopesError::Entry(entry.to_owned()))?;
            let scopes = scopes.split_whitespace();
            builder = if name == "*" {
                builder.default_scopes(scopes)
            } else if name.contains('/') {
                builder.method(name, scopes)
            } else {
                builder.tool(name, scopes)
            };
        }
        builder.build()
    }

    /// The extra scopes `op` needs by its name, or else by its method; `None` when it needs none
    /// beyond the baseline. For a method that names a resource or prompt without reading it
    /// (`resources/subscribe`, `resources/unsubscribe`, `completion/complete`), this is the
    /// name's entry only: [`requirements`](Self::requirements) has everything `op` needs.
    pub fn requirement(&self, op: &Operation) -> Option<&ScopeRequirement> {
        self.by_name(op).or_else(|| self.by_method(op))
    }

    /// Everything `op` needs, each of which must be met: the entry for its name (a tool,
    /// prompt or resource) and, for a method that names a resource or prompt without being the
    /// method that entry is written for (subscribing to a resource, completing a prompt's
    /// argument), also the rule of that method (or the default). So a name's entry adds to a
    /// method's rule and never replaces it. At most two.
    pub fn requirements(&self, op: &Operation) -> impl Iterator<Item = &ScopeRequirement> {
        let by_name = self.by_name(op);
        let named_elsewhere = op.kind().is_some_and(|kind| kind.method() != op.method());
        let by_method = if by_name.is_none() || named_elsewhere {
            self.by_method(op)
        } else {
            None
        };
        by_name.into_iter().chain(by_method)
    }

    /// The entry for `op`'s name, if it names something that has one.
    fn by_name(&self, op: &Operation) -> Option<&ScopeRequirement> {
        let (name, kind) = (op.name()?, op.kind()?);
        self.names.get(kind.method()).and_then(|n| n.get(name))
    }

    /// The rule of `op`'s method, or else the default (not for the baseline methods).
    fn by_method(&self, op: &Operation) -> Option<&ScopeRequirement> {
        if let Some(r) = self.methods.get(op.method()) {
            return r.as_ref();
        }
        if is_baseline_method(op.method()) {
            return None;
        }
        self.default.as_ref()
    }

    /// Whether no operation needs anything beyond the baseline.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.default.is_none()
            && self.methods.values().all(Option::is_none)
    }

    /// Every scope the policy names.
    pub fn all_scopes(&self) -> ScopeSet {
        ScopeSet::from_iter_lossy(
            self.names
                .values()
                .flat_map(|names| names.values())
                .chain(self.methods.values().flatten())
                .chain(&self.default)
                .flat_map(|r| r.challenge_scopes().iter()),
        )
    }

    /// The tools that have an entry of their own, with what they need.
    pub fn tools(&self) -> impl Iterator<Item = (&str, &ScopeRequirement)> {
        self.names
            .get("tools/call")
            .into_iter()
            .flat_map(|names| names.iter().map(|(n, r)| (n.as_str(), r)))
    }
}

/// Builds [`OperationScopes`]. Errors are collected and reported by [`build`](Self::build).
#[derive(Debug)]
pub struct OperationScopesBuilder {
    policy: OperationScopes,
    error: Option<OperationScopesError>,
}

impl OperationScopesBuilder {
    /// The tool `name` (`tools/call`) needs every scope of `scopes`.
    pub fn tool<I, S>(self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("tools/call", name.into(), scopes)
    }

    /// The prompt `name` (`prompts/get`, and `completion/complete` of a `ref/prompt`) needs
    /// every scope of `scopes`.
    pub fn prompt<I, S>(self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("prompts/get", name.into(), scopes)
    }

    /// The resource `uri` (`resources/read`, `resources/subscribe`, `resources/unsubscribe`
    /// and `completion/complete` of a `ref/resource`; exact match) needs every scope of
    /// `scopes`.
    pub fn resource<I, S>(self, uri: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("resources/read", uri.into(), scopes)
    }

    /// The tool, prompt or resource `name` of `method` needs `requirement` (for example
    /// [`ScopeRequirement::any_of`]). `method` is `tools/call`, `prompts/get` or
    /// `resources/read` ([`NameKind::method`]); the entry covers every method that names the
    /// same prompt or resource. Another method is a [`OperationScopesError::NameMethod`].
    pub fn name_requirement(
        mut self,
        method: impl Into<String>,
        name: impl Into<String>,
        requirement: ScopeRequirement,
    ) -> Self {
        let (method, name) = (method.into(), name.into());
        if NameKind::of_method(&method).is_none_or(|kind| kind.method() != method) {
            self.fail(OperationScopesError::NameMethod(method));
            return self;
        }
        let names = self.policy.names.entry(method.clone()).or_default();
        let duplicate = match names.entry(name) {
            Entry::Occupied(e) => Some(format!("{method} {:?}", e.key())),
            Entry::Vacant(v) => {
                v.insert(requirement);
                None
            }
        };
        if let Some(d) = duplicate {
            self.fail(OperationScopesError::Duplicate(d));
        }
        self
    }

    /// Every request of `method` (whatever it names, unless that name has an entry) needs
    /// every scope of `scopes`. An empty list makes the method need nothing beyond the
    /// baseline, even when a default is set.
    pub fn method<I, S>(mut self, method: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let method = method.into();
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        let requirement = if scopes.is_empty() {
            None
        } else {
            match self.requirement(&method, scopes) {
                Some(r) => Some(r),
                None => return self,
            }
        };
        match self.policy.methods.entry(method) {
            Entry::Occupied(e) => {
                let method = e.key().clone();
                self.fail(OperationScopesError::Duplicate(method));
            }
            Entry::Vacant(v) => {
                v.insert(requirement);
            }
        }
        self
    }

    /// Every operation without an entry of its own, other than the
    /// [baseline methods](is_baseline_method), needs every scope of `scopes`.
    pub fn default_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if self.policy.default.is_some() {
            self.fail(OperationScopesError::Duplicate("the default".to_owned()));
            return self;
        }
        self.policy.default = self.requirement("the default", scopes);
        self
    }

    /// Finishes the policy, or reports the first configuration error.
    pub fn build(self) -> Result<OperationScopes, OperationScopesError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.policy),
        }
    }

    fn named<I, S>(mut self, method: &str, name: String, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let target = format!("{method} {name:?}");
        match self.requirement(&target, scopes) {
            Some(r) => self.name_requirement(method, name, r),
            None => self,
        }
    }

    fn requirement<I, S>(&mut self, target: &str, scopes: I) -> Option<ScopeRequirement>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        // `all_of` also refuses an empty list and `offline_access`.
        match ScopeRequirement::all_of(&scopes) {
            Ok(r) => Some(r),
            Err(source) => {
                self.fail(OperationScopesError::Scope {
                    target: target.to_owned(),
                    source,
                });
                None
            }
        }
    }

    fn fail(&mut self, error: OperationScopesError) {
        self.error.get_or_insert(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(policy: &OperationScopes, op: &Operation) -> Option<String> {
        policy
            .requirement(op)
            .map(|r| r.challenge_scopes().to_string())
    }

    /// A resource's entry adds to the rule for subscribing (or completing) and never replaces
    /// it: subscribing to a resource needs both what reading it needs and what subscribing needs.
    #[test]
    fn a_name_entry_adds_to_the_rule_of_a_method_that_names_without_reading() {
        let policy = OperationScopes::builder()
            .method("resources/subscribe", ["mcp:subscribe"])
            .method("completion/complete", ["mcp:complete"])
            .resource("file:///a", ["files:read"])
            .prompt("secret", ["prompts:secret"])
            .build()
            .unwrap();
        let all = |op: &Operation| {
            policy
                .requirements(op)
                .map(|r| r.challenge_scopes().to_string())
                .collect::<Vec<_>>()
        };
        let subscribe = Operation::new("resources/subscribe", Some("file:///a"));
        assert_eq!(all(&subscribe), ["files:read", "mcp:subscribe"]);
        let other = Operation::new("resources/subscribe", Some("file:///b"));
        assert_eq!(all(&other), ["mcp:subscribe"]);
        let complete = Operation::completion(NameKind::Prompt, "secret");
        assert_eq!(all(&complete), ["prompts:secret", "mcp:complete"]);
        // Reading is decided by the name alone, as before.
        let read = Operation::new("resources/read", Some("file:///a"));
        assert_eq!(all(&read), ["files:read"]);
    }

    #[test]
    fn lookup_order() {
        let policy = OperationScopes::builder()
            .tool("write_note", ["mcp:write"])
            .prompt("secret", ["prompts:secret"])
            .resource("file:///etc/hosts", ["files:read"])
            .method("resources/read", ["files:list"])
            .method("tools/list", ["mcp:read"])
            .method("completion/complete", Vec::<String>::new())
            .default_scopes(["mcp:read"])
            .build()
            .unwrap();
        let none = None::<String>;
        assert_eq!(
            needs(&policy, &Operation::tool("write_note")).as_deref(),
            Some("mcp:write")
        );
        assert_eq!(
            needs(&policy, &Operation::tool("echo")).as_deref(),
            Some("mcp:read")
        );
        assert_eq!(
            needs(&policy, &Operation::new("prompts/get", Some("secret"))).as_deref(),
            Some("prompts:secret")
        );
        // A tool entry does not apply to a prompt of the same name.
        assert_eq!(
            needs(&policy, &Operation::new("prompts/get", Some("write_note"))).as_deref(),
            Some("mcp:read")
        );
        assert_eq!(
            needs(
                &policy,
                &Operation::new("resources/read", Some("file:///etc/hosts"))
            )
            .as_deref(),
            Some("files:read")
        );
        assert_eq!(
            needs(
                &policy,
                &Operation::new("resources/read", Some("file:///x"))
            )
            .as_deref(),
            Some("files:list")
        );
        // A baseline method can be configured; the others stay baseline despite the default.
        assert_eq!(
            needs(&policy, &Operation::new("tools/list", none.clone())).as_deref(),
            Some("mcp:read")
        );
        assert_eq!(
            needs(&policy, &Operation::new("initialize", none.clone())),
            None
        );
        assert_eq!(
            needs(
                &policy,
                &Operation::new("notifications/initialized", none.clone())
            ),
            None
        );
        // An explicitly empty method needs nothing, default or not.
        assert_eq!(
            needs(
                &policy,
                &Operation::new("completion/complete", none.clone())
            ),
            None
        );
        assert_eq!(
            needs(&policy, &Operation::new("logging/setLevel", none)).as_deref(),
            Some("mcp:read")
        );
    }

    #[test]
    fn prompt_and_resource_entries_cover_every_method_that_names_them() {
        let policy = OperationScopes::builder()
            .prompt("draft", ["prompts:draft"])
            .resource("file:///notes", ["files:read"])
            .name_requirement(
                "resources/read",
                "file:///any",
                ScopeRequirement::any_of(["a", "b"]).unwrap(),
            )
            .build()
            .unwrap();
        for method in [
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
        ] {
            assert_eq!(
                needs(&policy, &Operation::new(method, Some("file:///notes"))).as_deref(),
                Some("files:read"),
                "{method}"
            );
            assert_eq!(
                needs(&policy, &Operation::new(method, Some("file:///any"))).as_deref(),
                Some("a b"),
                "{method}"
            );
            assert_eq!(needs(&policy, &Operation::new(method, Some("draft"))), None);
        }
        let completion = |kind, name| needs(&policy, &Operation::completion(kind, name));
        assert_eq!(
            completion(NameKind::Prompt, "draft").as_deref(),
            Some("prompts:draft")
        );
        assert_eq!(
            completion(NameKind::Resource, "file:///notes").as_deref(),
            Some("files:read")
        );
        // A prompt entry is not a resource entry of the same name, nor a tool's.
        assert_eq!(completion(NameKind::Resource, "draft"), None);
        assert_eq!(needs(&policy, &Operation::tool("draft")), None);
        // Per-name entries are set for the method that calls, gets or reads.
        for method in [
            "resources/subscribe",
            "completion/complete",
            "tasks/get",
            "tools/list",
        ] {
            assert_eq!(
                OperationScopes::builder()
                    .name_requirement(method, "x", ScopeRequirement::all_of(["a"]).unwrap())
                    .build()
                    .unwrap_err(),
                OperationScopesError::NameMethod(method.to_owned())
            );
        }
    }

    #[test]
    fn without_default_unlisted_operations_need_nothing() {
        let policy = OperationScopes::builder().tool("a", ["x"]).build().unwrap();
        assert_eq!(needs(&policy, &Operation::tool("b")), None);
        assert!(!policy.is_empty());
        assert!(OperationScopes::builder().build().unwrap().is_empty());
    }

    #[test]
    fn parses_env_lists() {
        let policy = OperationScopes::parse(
            " echo=mcp:read , write_note=mcp:write mcp:read,resources/read=files:read,*=base",
        )
        .unwrap();
        assert_eq!(
            needs(&policy, &Operation::tool("echo")).as_deref(),
            Some("mcp:read")
        );
        assert_eq!(
            needs(&policy, &Operation::tool("write_note")).as_deref(),
            Some("mcp:read mcp:write")
        );
        assert_eq!(
            needs(&policy, &Operation::new("resources/read", Some("x"))).as_deref(),
            Some("files:read")
        );
        assert_eq!(
            needs(&policy, &Operation::tool("other")).as_deref(),
            Some("base")
        );
        let mut tools: Vec<_> = policy.tools().map(|(n, _)| n).collect();
        tools.sort_unstable();
        assert_eq!(tools, ["echo", "write_note"]);
        assert!(OperationScopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_configuration_is_an_error() {
        for list in ["echo", "echo=", "=mcp:read", "echo=mcp:read,echo=mcp:write"] {
            assert!(OperationScopes::parse(list).is_err(), "{list}");
        }
        assert!(matches!(
            OperationScopes::parse("echo=offline_access"),
            Err(OperationScopesError::Scope { .. })
        ));
        assert!(matches!(
            OperationScopes::parse("echo=bad\"scope"),
            Err(OperationScopesError::Scope { .. })
        ));
        assert!(matches!(
            OperationScopes::builder()
                .default_scopes(["a"])
                .default_scopes(["b"])
                .build(),
            Err(OperationScopesError::Duplicate(_))
        ));
        let e = OperationScopes::parse("echo").unwrap_err().to_string();
        assert!(e.contains("write_note=mcp:write"), "{e}");
    }
}
