//! Single flight: concurrent misses on one key share one computation, and only so many
//! computations run at once.
//!
//! When a token is not cached yet, an MCP client usually sends several requests with it at once
//! (the `initialize` request, its notification, a tool listing). Judging the token may cost a
//! call to the authorization server (RFC 7662 introspection), and without coordination every one
//! of those requests would make its own. So the first miss starts a *flight* and the later ones
//! join it: one [`Shared`] future whose output each of them gets a clone of.
//!
//! The map keeps only a weak handle ([`WeakShared`]) to each flight, and a flight removes itself
//! from the map when it ends: when its computation completes (or panics), and when every request
//! waiting for it has gone away before that (the computation is then dropped, unfinished: nobody
//! wants its answer any more). So a finished flight is never joined again, and an abandoned one
//! never blocks a later request for the same key. The computation is expected to put its
//! answer in the cache before it ends, so that a miss after the flight finds it there.
//!
//! The number of flights in the air is bounded. Beyond the bound a new key is answered
//! [`Busy`] at once rather than queued (its request is refused with a 503 and a `Retry-After`):
//! each flight is an outbound call, so a flood of made-up tokens must not become a flood of calls
//! to the authorization server, nor a queue that holds memory and answers late. Joining a flight
//! already in the air is always allowed: it costs no call.
//!
//! This is the miss path, so one mutex and a boxed future per flight are fine. It needs no
//! runtime: the flight runs inside the futures of the requests that wait for it.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, Weak},
};

use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};

use crate::secret::{SecretTag, TagHasher};

/// A computation shared by every request that joined it; each gets a clone of its output.
pub(crate) type Flight<T> = Shared<BoxFuture<'static, T>>;

/// Too many flights are in the air: answer "unavailable, retry later" now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

struct Running<T> {
    /// Tells this flight from a later one of the same key.
    id: u64,
    flight: WeakShared<BoxFuture<'static, T>>,
}

struct Map<T> {
    running: HashMap<SecretTag, Running<T>, TagHasher>,
    next_id: u64,
}

fn lock<T>(map: &Mutex<Map<T>>) -> MutexGuard<'_, Map<T>> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// The flights in the air, by key.
pub(crate) struct Flights<T> {
    map: Arc<Mutex<Map<T>>>,
    max: usize,
}

impl<T> std::fmt::Debug for Flights<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("running", &self.len())
            .field("max", &self.max)
            .finish()
    }
}

impl<T> Flights<T> {
    /// At most `max` flights in the air at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: Arc::new(Mutex::new(Map {
                running: HashMap::default(),
                next_id: 0,
            })),
            max,
        }
    }

    /// The number of flights in the air.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).running.len()
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Joins the flight of `tag`, or starts one with the future `start` makes (`start` is called
    /// only then, under the map's lock: it should only build the future). [`Busy`] when the
    /// flight would be a new one and `max` flights are in the air.
    pub(crate) fn join<F>(
        &self,
        tag: SecretTag,
        start: impl FnOnce() -> F,
    ) -> Result<Flight<T>, Busy>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut map = lock(&self.map);
        // Returned, never dropped here: dropping the last handle of a flight ends it, and its
        // `Landing` takes this lock.
        if let Some(flight) = map.running.get(&tag).and_then(|r| r.flight.upgrade()) {
            return Ok(flight);
        }
        // An entry left for `tag` is a flight that ended a moment ago and whose `Landing` waits
        // for this lock to remove it: it is replaced, and does not count.
        if !map.running.contains_key(&tag) && map.running.len() >= self.max {
            return Err(Busy);
        }
        let work = start();
        let id = map.next_id;
        map.next_id = map.next_id.wrapping_add(1);
        let landing = Landing {
            map: Arc::downgrade(&self.map),
            tag,
            id,
        };
        let flight = async move {
            // A local from the first poll on, so that a panic drops it too; before that, the
            // future owns it and dropping the future drops it.
            let _landing = landing;
            work.await
        }
        .boxed()
        .shared();
        if let Some(weak) = flight.downgrade() {
            map.running.insert(tag, Running { id, flight: weak });
        }
        Ok(flight)
    }
}

/// Removes its flight from the map when the flight ends: completed, panicked or abandoned.
struct Landing<T> {
    map: Weak<Mutex<Map<T>>>,
    tag: SecretTag,
    id: u64,
}

impl<T> Drop for Landing<T> {
    fn drop(&mut self) {
        let Some(map) = self.map.upgrade() else {
            return;
        };
        let mut map = lock(&map);
        if map.running.get(&self.tag).is_some_and(|r| r.id == self.id) {
            map.running.remove(&self.tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;
    use crate::secret::TagKey;

    /// A computation that counts its starts and ends with what is sent on the returned sender.
    struct Work {
        starts: Arc<AtomicUsize>,
        answer: Arc<Mutex<Option<oneshot::Receiver<u32>>>>,
    }

    impl Work {
        fn new() -> (Self, oneshot::Sender<u32>) {
            let (tx, rx) = oneshot::channel();
            let work = Self {
                starts: Arc::default(),
                answer: Arc::new(Mutex::new(Some(rx))),
            };
            (work, tx)
        }

        /// The `start` closure for `join`: a second start gets no answer and ends with 0.
        fn start(&self) -> impl FnOnce() -> BoxFuture<'static, u32> + use<> {
            let (starts, answer) = (self.starts.clone(), self.answer.clone());
            move || {
                starts.fetch_add(1, Ordering::SeqCst);
                let rx = answer.lock().unwrap().take();
                async move {
                    match rx {
                        Some(rx) => rx.await.unwrap_or(0),
                        None => 0,
                    }
                }
                .boxed()
            }
        }

        fn starts(&self) -> usize {
            self.starts.load(Ordering::SeqCst)
        }
    }

    fn tags() -> impl Iterator<Item = SecretTag> {
        let key = TagKey::random();
        (0u32..).map(move |i| key.tag(&i.to_le_bytes()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_concurrent_misses_of_one_key_run_the_computation_once() {
        let flights = Arc::new(Flights::<u32>::new(4));
        let tag = tags().next().unwrap();
        let (work, tx) = Work::new();
        let joined = Arc::new(tokio::sync::Barrier::new(101));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (flights, joined, start) = (flights.clone(), joined.clone(), work.start());
                tokio::spawn(async move {
                    let flight = flights.join(tag, start).expect("one flight is in the air");
                    joined.wait().await;
                    flight.await
                })
            })
            .collect();
        joined.wait().await;
        assert_eq!(flights.len(), 1);
        tx.send(42).unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 42);
        }
        assert_eq!(work.starts(), 1);
    }

    #[tokio::test]
    async fn a_completed_flight_leaves_the_map_and_the_next_miss_starts_another() {
        let flights = Flights::<u32>::new(4);
        let tag = tags().next().unwrap();
        let (work, tx) = Work::new();
        let (first, second) = (
            flights.join(tag, work.start()).unwrap(),
            flights.join(tag, work.start()).unwrap(),
        );
        tx.send(7).unwrap();
        assert_eq!(first.await, 7);
        assert_eq!(flights.len(), 0);
        // A handle still held gets the same answer, without a second start.
        assert_eq!(second.await, 7);
        assert_eq!(work.starts(), 1);
        let third = flights.join(tag, work.start()).unwrap();
        assert_eq!(work.starts(), 2);
        assert_eq!(third.await, 0);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn an_abandoned_flight_does_not_block_a_later_miss() {
        let flights = Flights::<u32>::new(4);
        let tag = tags().next().unwrap();
        // Abandoned before it was ever polled.
        let (work, _tx) = Work::new();
        drop(flights.join(tag, work.start()).unwrap());
        assert_eq!(flights.len(), 0);
        // Abandoned while waiting for its answer.
        let (work, _tx) = Work::new();
        let mut flight = flights.join(tag, work.start()).unwrap();
        assert!((&mut flight).now_or_never().is_none());
        let also = flight.clone();
        drop(flight);
        assert_eq!(flights.len(), 1, "a joiner still waits");
        drop(also);
        assert_eq!(flights.len(), 0);
        let (work, tx) = Work::new();
        let flight = flights.join(tag, work.start()).unwrap();
        tx.send(9).unwrap();
        assert_eq!(flight.await, 9);
        assert_eq!(work.starts(), 1);
    }

    #[tokio::test]
    async fn a_panicking_flight_does_not_block_a_later_miss() {
        let flights = Flights::<u32>::new(1);
        let tag = tags().next().unwrap();
        let flight = flights
            .join(tag, || async { panic!("the computation failed") })
            .unwrap();
        // Another request still waits for it: the flight ends all the same.
        let held = flight.clone();
        assert!(tokio::spawn(flight).await.unwrap_err().is_panic());
        assert_eq!(flights.len(), 0);
        let (work, tx) = Work::new();
        let flight = flights.join(tag, work.start()).unwrap();
        tx.send(3).unwrap();
        assert_eq!(flight.await, 3);
        drop(held);
    }

    #[tokio::test]
    async fn beyond_the_bound_a_new_key_is_busy_until_a_flight_ends() {
        let flights = Flights::<u32>::new(2);
        let mut keys = tags();
        let (a, b, c, d) = (
            keys.next().unwrap(),
            keys.next().unwrap(),
            keys.next().unwrap(),
            keys.next().unwrap(),
        );
        let (work_a, tx_a) = Work::new();
        let (work_b, _tx_b) = Work::new();
        let (work_c, _tx_c) = Work::new();
        let (work_d, tx_d) = Work::new();
        let flight_a = flights.join(a, work_a.start()).unwrap();
        let flight_b = flights.join(b, work_b.start()).unwrap();
        assert_eq!(flights.join(c, work_c.start()).err(), Some(Busy));
        assert_eq!(work_c.starts(), 0);
        // Joining a flight in the air costs no slot.
        let also_a = flights.join(a, work_a.start()).unwrap();
        assert_eq!(work_a.starts(), 1);
        // A completed flight frees its slot.
        tx_a.send(1).unwrap();
        assert_eq!(flight_a.await, 1);
        assert_eq!(also_a.await, 1);
        let flight_c = flights.join(c, work_c.start()).unwrap();
        assert_eq!(flights.join(d, work_d.start()).err(), Some(Busy));
        // So does an abandoned one.
        drop(flight_b);
        let flight_d = flights.join(d, work_d.start()).unwrap();
        tx_d.send(4).unwrap();
        assert_eq!(flight_d.await, 4);
        drop(flight_c);
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn no_flight_may_start_with_a_bound_of_zero() {
        let flights = Flights::<u32>::new(0);
        let (work, _tx) = Work::new();
        let tag = tags().next().unwrap();
        assert_eq!(flights.join(tag, work.start()).err(), Some(Busy));
        assert_eq!(work.starts(), 0);
    }
}
