//! The bounded table behind [`SessionBindingLayer`](super::SessionBindingLayer): which principal
//! opened which session, forgotten after an idle timeout, at most a fixed number of sessions in
//! all and per principal.
//!
//! Every operation takes `now`, so that the tests can drive time. The costs, under the caller's
//! lock:
//! - [`check`](Table::check): one hash lookup and two stores (the hot path allocates nothing).
//! - [`bind`](Table::bind): amortized O(1): per-principal eviction pops the principal's oldest;
//!   global eviction is a CLOCK (second chance) over the sessions in the order they were bound;
//!   a full sweep of idle entries runs at most once per sweep interval.
//! - [`remove`](Table::remove): a lookup plus a scan of one principal's list (at most the
//!   per-principal cap).

use std::{
    cell::Cell,
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::identity::{AuthMethod, PrincipalKey};

/// The limits of a table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// A session unused for longer is forgotten.
    pub(super) idle: Duration,
    /// Sessions bound at once, in all (at least 1).
    pub(super) max_sessions: usize,
    /// Sessions bound at once, per principal (at least 1).
    pub(super) per_principal: usize,
}

impl Limits {
    /// How often [`Table::bind`] sweeps out idle entries: the idle timeout, at most a minute.
    fn sweep_every(&self) -> Duration {
        self.idle.min(Duration::from_secs(60))
    }
}

/// The owned form of a [`PrincipalKey`].
#[derive(Debug, PartialEq, Eq, Hash)]
enum Owner {
    Issued {
        issuer: Box<str>,
        subject: Box<str>,
    },
    Local {
        method: AuthMethod,
        subject: Box<str>,
    },
}

impl Owner {
    fn of(key: PrincipalKey<'_>) -> Self {
        match key {
            PrincipalKey::Issued { issuer, subject } => Self::Issued {
                issuer: issuer.into(),
                subject: subject.into(),
            },
            PrincipalKey::Local { method, subject } => Self::Local {
                method,
                subject: subject.into(),
            },
        }
    }

    /// Whether `key` is this owner (no allocation).
    fn is(&self, key: PrincipalKey<'_>) -> bool {
        match (self, key) {
            (
                Self::Issued { issuer, subject },
                PrincipalKey::Issued {
                    issuer: i,
                    subject: s,
                },
            ) => **issuer == *i && **subject == *s,
            (
                Self::Local { method, subject },
                PrincipalKey::Local {
                    method: m,
                    subject: s,
                },
            ) => *method == m && **subject == *s,
            _ => false,
        }
    }
}

struct Entry {
    owner: Arc<Owner>,
    /// Tells this binding from a later one of the same id in the CLOCK queue and in
    /// [`Table::remove`].
    seq: u64,
    last_used: Cell<Instant>,
    /// Used since the CLOCK hand last passed (second chance).
    referenced: Cell<bool>,
}

impl Entry {
    fn expired(&self, now: Instant, idle: Duration) -> bool {
        now.saturating_duration_since(self.last_used.get()) > idle
    }
}

/// What [`Table::check`] found for a session id.
#[derive(Debug)]
pub(super) enum Lookup {
    /// Bound to this principal: the id as the table holds it, and the binding's sequence number.
    Owned(Arc<str>, u64),
    /// Bound to another principal.
    NotOwner,
    /// Not bound (never, or no longer: deleted, expired, evicted).
    Unknown,
}

/// What [`Table::bind`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Bind {
    /// Bound (or already bound to this principal: refreshed).
    Bound,
    /// Already bound to another principal: left as it was.
    Conflict,
}

/// The table. Not thread-safe on its own: the layer keeps it under a mutex.
pub(super) struct Table {
    entries: HashMap<Arc<str>, Entry>,
    /// Each principal's sessions, oldest first.
    owners: HashMap<Arc<Owner>, VecDeque<Arc<str>>>,
    /// Every binding in the order it was made, for the CLOCK; may hold stale pairs (removed
    /// bindings), compacted when they outnumber the live ones.
    clock: VecDeque<(Arc<str>, u64)>,
    next_seq: u64,
    last_sweep: Instant,
}

impl Table {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            entries: HashMap::new(),
            owners: HashMap::new(),
            clock: VecDeque::new(),
            next_seq: 0,
            last_sweep: now,
        }
    }

    /// The number of sessions bound.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Looks `id` up for `key`; refreshes it when `key` owns it, forgets it when it has expired.
    pub(super) fn check(
        &mut self,
        id: &str,
        key: PrincipalKey<'_>,
        now: Instant,
        idle: Duration,
    ) -> Lookup {
        let Some((stored, entry)) = self.entries.get_key_value(id) else {
            return Lookup::Unknown;
        };
        if entry.expired(now, idle) {
            self.remove_entry(id);
            return Lookup::Unknown;
        }
        if !entry.owner.is(key) {
            return Lookup::NotOwner;
        }
        entry.last_used.set(now);
        entry.referenced.set(true);
        Lookup::Owned(stored.clone(), entry.seq)
    }

    /// Binds `id` to `key`, evicting what the limits require.
    pub(super) fn bind(
        &mut self,
        id: &str,
        key: PrincipalKey<'_>,
        now: Instant,
        limits: &Limits,
    ) -> Bind {
        if let Some(entry) = self.entries.get(id) {
            if entry.expired(now, limits.idle) {
                self.remove_entry(id);
            } else if entry.owner.is(key) {
                entry.last_used.set(now);
                return Bind::Bound;
            } else {
                // Ids are unique per server; a repeat is a server bug. Keep the first owner.
                return Bind::Conflict;
            }
        }
        if now.saturating_duration_since(self.last_sweep) >= limits.sweep_every() {
            self.sweep(now, limits.idle);
        }
        let owner = Owner::of(key);
        if let Some(mine) = self.owners.get_mut(&owner) {
            // Its oldest first; its list may be left empty, the new one joins it below.
            while mine.len() >= limits.per_principal.max(1) {
                if let Some(old) = mine.pop_front() {
                    self.entries.remove(&old);
                }
            }
        }
        while self.entries.len() >= limits.max_sessions.max(1) {
            if !self.evict_one(now, limits.idle) {
                break;
            }
        }
        let owner = match self.owners.get_key_value(&owner) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(owner),
        };
        let id: Arc<str> = Arc::from(id);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.owners
            .entry(owner.clone())
            .or_default()
            .push_back(id.clone());
        self.clock.push_back((id.clone(), seq));
        self.entries.insert(
            id,
            Entry {
                owner,
                seq,
                last_used: Cell::new(now),
                referenced: Cell::new(false),
            },
        );
        if self.clock.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.clock
                .retain(|(id, seq)| entries.get(id).is_some_and(|e| e.seq == *seq));
        }
        Bind::Bound
    }

    /// Forgets `id` if it is still the binding `seq`.
    pub(super) fn remove(&mut self, id: &str, seq: u64) {
        if self.entries.get(id).is_some_and(|e| e.seq == seq) {
            self.remove_entry(id);
        }
    }

    fn remove_entry(&mut self, id: &str) {
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        if let Some(mine) = self.owners.get_mut(&*entry.owner) {
            mine.retain(|s| **s != *id);
            if mine.is_empty() {
                self.owners.remove(&*entry.owner);
            }
        }
    }

    /// Evicts one binding: the first, in binding order, that has expired or was not used since
    /// the hand last passed it. `false` if there is none.
    fn evict_one(&mut self, now: Instant, idle: Duration) -> bool {
        // After one full turn every live binding has lost its second chance.
        for _ in 0..=2 * self.clock.len() {
            let Some((id, seq)) = self.clock.pop_front() else {
                return false;
            };
            let Some(entry) = self.entries.get(&id).filter(|e| e.seq == seq) else {
                continue; // stale
            };
            if entry.expired(now, idle) || !entry.referenced.get() {
                self.remove_entry(&id);
                return true;
            }
            entry.referenced.set(false);
            self.clock.push_back((id, seq));
        }
        false
    }

    /// Forgets every expired binding.
    fn sweep(&mut self, now: Instant, idle: Duration) {
        self.last_sweep = now;
        self.entries.retain(|_, e| !e.expired(now, idle));
        let entries = &self.entries;
        self.owners.retain(|owner, mine| {
            mine.retain(|id| {
                entries
                    .get(id)
                    .is_some_and(|e| Arc::ptr_eq(&e.owner, owner))
            });
            !mine.is_empty()
        });
        self.clock
            .retain(|(id, seq)| entries.get(id).is_some_and(|e| e.seq == *seq));
    }

    /// Entries, principals, ids held in the per-principal lists, pairs in the CLOCK queue.
    #[cfg(test)]
    fn footprint(&self) -> (usize, usize, usize, usize) {
        (
            self.entries.len(),
            self.owners.len(),
            self.owners.values().map(VecDeque::len).sum(),
            self.clock.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(3600);

    fn limits(max_sessions: usize, per_principal: usize) -> Limits {
        Limits {
            idle: IDLE,
            max_sessions,
            per_principal,
        }
    }

    fn local(subject: &str) -> PrincipalKey<'_> {
        PrincipalKey::Local {
            method: AuthMethod::StaticBearer,
            subject,
        }
    }

    fn owned(table: &mut Table, id: &str, key: PrincipalKey<'_>, now: Instant) -> bool {
        matches!(table.check(id, key, now, IDLE), Lookup::Owned(..))
    }

    #[test]
    fn a_session_belongs_to_the_principal_that_opened_it() {
        let now = Instant::now();
        let mut t = Table::new(now);
        let l = limits(10, 10);
        assert_eq!(t.bind("s1", local("alice"), now, &l), Bind::Bound);
        assert!(owned(&mut t, "s1", local("alice"), now));
        assert!(matches!(
            t.check("s1", local("mallory"), now, IDLE),
            Lookup::NotOwner
        ));
        let basic_alice = PrincipalKey::Local {
            method: AuthMethod::Basic,
            subject: "alice",
        };
        assert!(matches!(
            t.check("s1", basic_alice, now, IDLE),
            Lookup::NotOwner
        ));
        let issued = PrincipalKey::Issued {
            issuer: "alice",
            subject: "alice",
        };
        assert!(matches!(t.check("s1", issued, now, IDLE), Lookup::NotOwner));
        assert!(matches!(
            t.check("s2", local("alice"), now, IDLE),
            Lookup::Unknown
        ));
        // A repeated id keeps its first owner.
        assert_eq!(t.bind("s1", local("mallory"), now, &l), Bind::Conflict);
        assert!(owned(&mut t, "s1", local("alice"), now));
    }

    #[test]
    fn an_idle_binding_expires_and_use_refreshes_it() {
        let start = Instant::now();
        let mut t = Table::new(start);
        let l = limits(10, 10);
        t.bind("s1", local("alice"), start, &l);
        t.bind("s2", local("alice"), start, &l);
        let later = start + IDLE;
        assert!(owned(&mut t, "s1", local("alice"), later)); // refreshed at `later`
        let past = later + Duration::from_secs(1);
        assert!(owned(&mut t, "s1", local("alice"), past));
        assert!(matches!(
            t.check("s2", local("alice"), past, IDLE),
            Lookup::Unknown
        ));
        assert_eq!(t.footprint(), (1, 1, 1, 2));
    }

    #[test]
    fn a_sweep_forgets_idle_bindings_that_are_never_asked_for() {
        let start = Instant::now();
        let mut t = Table::new(start);
        let l = limits(100, 100);
        for i in 0..50 {
            t.bind(&format!("s{i}"), local("alice"), start, &l);
        }
        let later = start + IDLE + Duration::from_secs(1);
        t.bind("fresh", local("bob"), later, &l);
        assert_eq!(t.footprint(), (1, 1, 1, 1));
    }

    #[test]
    fn a_principal_over_its_cap_loses_its_own_oldest() {
        let now = Instant::now();
        let mut t = Table::new(now);
        let l = limits(100, 3);
        t.bind("m1", local("mallory"), now, &l);
        for i in 0..5 {
            t.bind(&format!("a{i}"), local("alice"), now, &l);
        }
        for gone in ["a0", "a1"] {
            assert!(matches!(
                t.check(gone, local("alice"), now, IDLE),
                Lookup::Unknown
            ));
        }
        for kept in ["a2", "a3", "a4"] {
            assert!(owned(&mut t, kept, local("alice"), now));
        }
        assert!(owned(&mut t, "m1", local("mallory"), now));
    }

    #[test]
    fn the_global_cap_evicts_what_was_not_used_since_first() {
        let now = Instant::now();
        let mut t = Table::new(now);
        let l = limits(3, 10);
        t.bind("a", local("alice"), now, &l);
        t.bind("b", local("bob"), now, &l);
        t.bind("c", local("carol"), now, &l);
        assert!(owned(&mut t, "a", local("alice"), now)); // a second chance for `a`
        t.bind("d", local("dave"), now, &l);
        assert!(matches!(
            t.check("b", local("bob"), now, IDLE),
            Lookup::Unknown
        ));
        for (id, who) in [("a", "alice"), ("c", "carol"), ("d", "dave")] {
            assert!(owned(&mut t, id, local(who), now));
        }
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn remove_forgets_only_the_same_binding() {
        let now = Instant::now();
        let mut t = Table::new(now);
        let l = limits(10, 10);
        t.bind("s1", local("alice"), now, &l);
        let Lookup::Owned(id, seq) = t.check("s1", local("alice"), now, IDLE) else {
            panic!("not bound");
        };
        t.remove(&id, seq + 1);
        assert_eq!(t.len(), 1);
        t.remove(&id, seq);
        let (entries, owners, listed, _) = t.footprint();
        assert_eq!((entries, owners, listed), (0, 0, 0));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let start = Instant::now();
        let (max, per) = (1_000, 10);
        let l = limits(max, per);
        let mut t = Table::new(start);
        // One principal opens sessions without end: it keeps only its newest `per`.
        for i in 0..50_000u32 {
            t.bind(&format!("flood-{i}"), local("mallory"), start, &l);
            let (entries, owners, listed, clock) = t.footprint();
            assert!(entries <= per && owners == 1 && listed == entries);
            assert!(clock <= 2 * entries + 65, "{clock}");
        }
        // Many principals, each using its sessions: the table never holds more than `max`.
        let mut now = start;
        for i in 0..50_000u32 {
            now += Duration::from_millis(1);
            let who = format!("p{}", i % 3_000);
            let id = format!("many-{i}");
            t.bind(&id, local(&who), now, &l);
            assert!(owned(&mut t, &id, local(&who), now));
            let (entries, owners, listed, clock) = t.footprint();
            assert!(entries <= max && owners <= entries && listed == entries);
            assert!(clock <= 2 * entries + 65, "{clock}");
        }
        assert_eq!(t.len(), max);
        // And after the idle timeout, one bind sweeps everything else out.
        t.bind("last", local("alice"), now + IDLE + IDLE, &l);
        assert_eq!(t.footprint(), (1, 1, 1, 1));
    }
}
