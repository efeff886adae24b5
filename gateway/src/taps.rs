//! The listeners of one child: which of its notifications outside any request each
//! `subscriptions/listen` stream wants, delivered without ever making the child wait.
//!
//! A 2025 client receives a server's list changes and resource updates on its session's `GET`
//! stream. MCP 2026-07-28 has no sessions and no `GET`: a client that wants them sends
//! `subscriptions/listen` with a filter of the kinds it wants, and the answer is a stream of
//! exactly those ([`crate::listen`]). The child still speaks 2025 and sends its notifications to
//! nobody in particular, so the bridge offers each one to the child's taps ([`Taps::offer`]), and
//! only the taps whose [`Filter`] wants it get a copy:
//!
//! | the child sends | reaches a tap whose filter has |
//! |---|---|
//! | `notifications/tools/list_changed` | `toolsListChanged: true` |
//! | `notifications/prompts/list_changed` | `promptsListChanged: true` |
//! | `notifications/resources/list_changed` | `resourcesListChanged: true` |
//! | `notifications/resources/updated` for `uri` | `uri` (or a resource under it) in `resourceSubscriptions` |
//! | anything else (logging, …) | none: the revision puts only these four on a listen stream |
//!
//! **Bounded, never blocking.** A tap holds a queue of [`QUEUE`] messages. The child's
//! output is read by one task for every client; if a listener's client stops reading, waiting
//! for it would stall every other exchange of the child. So a tap whose queue is full is
//! dropped instead (its stream ends, without the final result: the client re-listens and reads
//! again, as the revision says it must since nothing is replayed). A principal has at most
//! [`MAX_LISTENERS`] taps on a child, and a filter at most [`MAX_URIS`] resource URIs.
//!
//! **Resource subscriptions are counted.** A 2025 child sends updates only for the URIs a
//! client subscribed to with `resources/subscribe`, once per URI. The taps count the
//! listeners of each URI: [`Taps::add`] names the URIs nobody listened to before (to
//! subscribe), [`Taps::remove`] those nobody listens to any more (to unsubscribe); the
//! caller sends them while holding [`Taps::order`], so that a subscribe and an unsubscribe of
//! one URI reach the child in the order the counts changed.
//!
//! ```
//! use mcp_auth_gateway::taps::Filter;
//! use serde_json::json;
//! let filter = Filter::parse(&json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})).unwrap();
//! assert!(filter.wants("notifications/tools/list_changed", None));
//! assert!(!filter.wants("notifications/prompts/list_changed", None));
//! assert!(filter.wants("notifications/resources/updated", Some("file:///a")));
//! assert!(!filter.wants("notifications/resources/updated", Some("file:///b")));
//! ```

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, MutexGuard, PoisonError},
};

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::message::Message;

/// The most `subscriptions/listen` streams one principal has open on one child.
pub const MAX_LISTENERS: usize = 8;
/// The most resource URIs in one filter.
pub const MAX_URIS: usize = 64;
/// Messages queued towards one listener; one more and its stream ends.
pub const QUEUE: usize = 32;

const TOOLS: &str = "notifications/tools/list_changed";
const PROMPTS: &str = "notifications/prompts/list_changed";
const RESOURCES: &str = "notifications/resources/list_changed";
const UPDATED: &str = "notifications/resources/updated";

/// Whether a notification `method` is one that only listen streams carry at 2026-07-28.
pub fn listen_only(method: &str) -> bool {
    [TOOLS, PROMPTS, RESOURCES, UPDATED].contains(&method)
}

/// The kinds of notifications one listener wants (the revision's `SubscriptionFilter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `notifications/tools/list_changed`.
    pub tools: bool,
    /// `notifications/prompts/list_changed`.
    pub prompts: bool,
    /// `notifications/resources/list_changed`.
    pub resources: bool,
    /// `notifications/resources/updated` for these URIs (sorted, no duplicates).
    pub uris: Vec<String>,
}

impl Filter {
    /// The filter of a `subscriptions/listen` request (its `params.notifications`); an error
    /// says what is wrong. Keys the gateway does not know (extensions) are not honored.
    pub fn parse(notifications: &Value) -> Result<Self, String> {
        let Some(object) = notifications.as_object() else {
            return Err("params.notifications must be an object (a SubscriptionFilter)".into());
        };
        let flag = |key: &str| match object.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("params.notifications.{key} must be a boolean")),
        };
        let uris = match object.get("resourceSubscriptions") {
            None | Some(Value::Null) => BTreeSet::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|u| u.as_str().map(str::to_owned))
                .collect::<Option<BTreeSet<String>>>()
                .ok_or("params.notifications.resourceSubscriptions must be an array of URIs")?,
            Some(_) => {
                return Err(
                    "params.notifications.resourceSubscriptions must be an array of URIs".into(),
                );
            }
        };
        if uris.len() > MAX_URIS {
            return Err(format!(
                "params.notifications.resourceSubscriptions names {} URIs; at most {MAX_URIS} \
                 per subscriptions/listen (open another stream for more)",
                uris.len()
            ));
        }
        Ok(Self {
            tools: flag("toolsListChanged")?,
            prompts: flag("promptsListChanged")?,
            resources: flag("resourcesListChanged")?,
            uris: uris.into_iter().collect(),
        })
    }

    /// The filter as the acknowledgement reports it: the kinds not wanted are left out.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (key, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                out.insert(key.into(), Value::Bool(true));
            }
        }
        if !self.uris.is_empty() {
            out.insert("resourceSubscriptions".into(), self.uris.clone().into());
        }
        Value::Object(out)
    }

    /// Whether a notification `method` (about `uri`, for a resource update) is wanted.
    pub fn wants(&self, method: &str, uri: Option<&str>) -> bool {
        match method {
            TOOLS => self.tools,
            PROMPTS => self.prompts,
            RESOURCES => self.resources,
            UPDATED => uri.is_some_and(|uri| self.uris.iter().any(|s| within(uri, s))),
            _ => false,
        }
    }
}

/// Whether the resource `uri` is `subscribed` or under it (a resource update may name a
/// sub-resource of the subscribed one).
fn within(uri: &str, subscribed: &str) -> bool {
    uri.strip_prefix(subscribed).is_some_and(|rest| {
        rest.is_empty() || subscribed.ends_with('/') || rest.starts_with(['/', '?', '#'])
    })
}

/// Why a tap cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TapError {
    /// The principal has [`MAX_LISTENERS`] open already.
    #[error(
        "this principal already has {0} subscriptions/listen streams open on its MCP server: \
         close one before opening another"
    )]
    TooMany(usize),
    /// The child has ended.
    #[error("the MCP server has ended: send the request again to start a new one")]
    Ended,
}

/// The taps of one child.
#[derive(Debug, Default)]
pub struct Taps {
    state: Mutex<State>,
    order: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    taps: HashMap<u64, Tap>,
    /// The listeners of each resource URI (counted while their listener lives, even after
    /// its tap was dropped for being slow).
    uris: HashMap<String, usize>,
}

#[derive(Debug)]
struct Tap {
    owner: String,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
}

impl Taps {
    fn state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if one did, the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held while the subscriptions that [`add`](Self::add) and [`remove`](Self::remove)
    /// name are written to the child.
    pub async fn order(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.order.lock().await
    }

    /// A tap of `owner` (a principal) for `filter`, with its queue: its number, and the
    /// resource URIs that nobody listened to before.
    pub fn add(
        &self,
        owner: &str,
        filter: Filter,
    ) -> Result<(u64, mpsc::Receiver<Bytes>, Vec<String>), TapError> {
        let mut state = self.state();
        let open = state.taps.values().filter(|t| t.owner == owner).count();
        if open >= MAX_LISTENERS {
            return Err(TapError::TooMany(MAX_LISTENERS));
        }
        let mut new = Vec::new();
        for uri in &filter.uris {
            let n = state.uris.entry(uri.clone()).or_default();
            *n += 1;
            if *n == 1 {
                new.push(uri.clone());
            }
        }
        state.next += 1;
        let id = state.next;
        let (tx, rx) = mpsc::channel(QUEUE);
        let owner = owner.to_owned();
        state.taps.insert(id, Tap { owner, filter, tx });
        Ok((id, rx, new))
    }

    /// Removes tap `id`, whose listener wanted `uris`: the URIs nobody listens to any more.
    pub fn remove(&self, id: u64, uris: &[String]) -> Vec<String> {
        let mut state = self.state();
        state.taps.remove(&id);
        let mut gone = Vec::new();
        for uri in uris {
            if let Some(n) = state.uris.get_mut(uri) {
                *n -= 1;
                if *n == 0 {
                    state.uris.remove(uri);
                    gone.push(uri.clone());
                }
            }
        }
        gone
    }

    /// How many taps are open.
    pub fn len(&self) -> usize {
        self.state().taps.len()
    }

    /// Whether no tap is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers the child's notification `msg` (its bytes: `line`) to every tap that wants it,
    /// without waiting: a tap whose queue is full or whose listener is gone is dropped.
    pub fn offer(&self, msg: &Message<'_>, line: &Bytes, label: &str) {
        let Some(method) = msg.method() else { return };
        if !listen_only(method) {
            return;
        }
        let uri = (method == UPDATED)
            .then(|| {
                let params = serde_json::from_str::<Value>(msg.params()?.get()).ok()?;
                params.get("uri")?.as_str().map(str::to_owned)
            })
            .flatten();
        let mut state = self.state();
        state.taps.retain(|id, tap| {
            if !tap.filter.wants(method, uri.as_deref()) {
                return !tap.tx.is_closed();
            }
            match tap.tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(
                        "[{label}] a subscriptions/listen stream fell {QUEUE} messages behind: \
                         it was ended (tap {id})"
                    );
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Drops every tap (the child has ended): their streams end.
    pub fn clear(&self) {
        self.state().taps.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_filter_keeps_only_what_was_asked_and_refuses_a_wrong_shape() {
        let f = Filter::parse(
            &json!({"promptsListChanged": true, "toolsListChanged": false,
                                      "taskIds": ["t"], "resourceSubscriptions": ["b", "a", "a"]}),
        )
        .unwrap();
        assert_eq!(
            f.to_json(),
            json!({"promptsListChanged": true, "resourceSubscriptions": ["a", "b"]})
        );
        assert!(Filter::parse(&json!([])).is_err());
        assert!(Filter::parse(&json!({"toolsListChanged": "yes"})).is_err());
        assert!(Filter::parse(&json!({"resourceSubscriptions": [1]})).is_err());
        let many: Vec<String> = (0..=MAX_URIS).map(|i| format!("u{i}")).collect();
        assert!(Filter::parse(&json!({ "resourceSubscriptions": many })).is_err());
    }

    #[test]
    fn a_resource_update_reaches_the_subscribers_of_it_or_of_a_parent() {
        let f =
            Filter::parse(&json!({"resourceSubscriptions": ["file:///dir", "x://a/"]})).unwrap();
        for (uri, wanted) in [
            ("file:///dir", true),
            ("file:///dir/f", true),
            ("file:///directory", false),
            ("x://a/b", true),
            ("x://b", false),
        ] {
            assert_eq!(f.wants(UPDATED, Some(uri)), wanted, "{uri}");
        }
        assert!(!f.wants(UPDATED, None));
        assert!(!f.wants("notifications/message", None));
    }

    #[test]
    fn uris_are_subscribed_once_and_unsubscribed_with_their_last_listener() {
        let taps = Taps::default();
        let f = Filter::parse(&json!({"resourceSubscriptions": ["a", "b"]})).unwrap();
        let (one, _rx1, new) = taps.add("alice", f.clone()).unwrap();
        assert_eq!(new, ["a", "b"]);
        let (two, _rx2, new) = taps.add("alice", f.clone()).unwrap();
        assert!(new.is_empty());
        assert!(taps.remove(one, &f.uris).is_empty());
        assert_eq!(taps.remove(two, &f.uris), ["a", "b"]);
    }

    #[test]
    fn a_principal_has_a_bounded_number_of_taps() {
        let taps = Taps::default();
        let mut kept = Vec::new();
        for _ in 0..MAX_LISTENERS {
            kept.push(taps.add("alice", Filter::default()).unwrap());
        }
        assert_eq!(
            taps.add("alice", Filter::default()).unwrap_err(),
            TapError::TooMany(MAX_LISTENERS)
        );
        assert!(taps.add("bob", Filter::default()).is_ok());
    }

    #[test]
    fn a_full_tap_is_dropped_and_never_waited_for() {
        let taps = Taps::default();
        let f = Filter::parse(&json!({"toolsListChanged": true})).unwrap();
        let (_, mut rx, _) = taps.add("alice", f).unwrap();
        let line =
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
        let msg = Message::parse(&line).unwrap();
        for _ in 0..=QUEUE {
            taps.offer(&msg, &line, "test");
        }
        assert!(taps.is_empty());
        let mut got = 0;
        while rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, QUEUE);
    }
}
