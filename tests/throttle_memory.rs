//! The memory bound of throttling in memory, measured: 100,000 failed authentications from
//! 100,000 addresses go through a `ThrottleLayer` with the default `MemoryStore`, and the heap
//! the layer holds afterwards is counted by a counting global allocator (this test binary's
//! own). It must stay under the bound the documentation states: `capacity` keys of at most
//! `MemoryStore::MAX_BYTES_PER_KEY` bytes each (8 MiB at the default 65,536 keys).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    convert::Infallible,
    future::{Ready, ready},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::atomic::{AtomicIsize, Ordering},
    time::Duration,
};

use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use mcp_server_auth::{store::MemoryStore, throttle::ThrottleLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only a counter is updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Every request fails authentication.
fn refuse(_: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    let mut res = Response::new(());
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    ready(Ok(res))
}

fn address(i: u32) -> IpAddr {
    if i.is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    } else {
        // A new /64 each time.
        IpAddr::V6(Ipv6Addr::from(u128::from(i) << 64 | 1))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_failures_from_100_000_addresses_stays_under_the_stated_memory_bound() {
    const FLOOD: u32 = 100_000;
    let layer = ThrottleLayer::new(1, Duration::from_secs(600));
    let mut service = layer.layer(service_fn(refuse));
    let store: &MemoryStore = layer.store().unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..FLOOD {
        let mut req = Request::new(());
        req.headers_mut()
            .insert(AUTHORIZATION, "Bearer guess".parse().unwrap());
        req.extensions_mut()
            .insert(SocketAddr::new(address(i), 40_000));
        let res = service.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "request {i}");
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    let bound = store.capacity() * MemoryStore::MAX_BYTES_PER_KEY;
    eprintln!(
        "{FLOOD} addresses: {} keys held (capacity {}), {grown} bytes of heap (bound {bound}, \
         {:.1} bytes per key)",
        store.len(),
        store.capacity(),
        grown as f64 / store.len() as f64,
    );
    assert_eq!(store.capacity(), MemoryStore::DEFAULT_CAPACITY);
    assert!(bound <= 8 << 20, "the documented bound is 8 MiB");
    assert!(store.len() <= store.capacity());
    assert!(grown > 0 && grown as usize <= bound, "{grown} > {bound}");

    // The newest clients are still counted: one more failure from the last one is refused.
    let mut req = Request::new(());
    req.headers_mut()
        .insert(AUTHORIZATION, "Bearer guess".parse().unwrap());
    req.extensions_mut()
        .insert(SocketAddr::new(address(FLOOD - 1), 40_000));
    let res = service.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}
