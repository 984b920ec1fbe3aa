//! The Tokio runtimes that drive every request (docs/runtime.md).
//!
//! - A blocking call runs on the calling thread's own current-thread runtime: no thread
//!   hand-off, which is what keeps it at libcurl's speed.
//! - Work off the callers' threads (background refresh, async operations and their callbacks)
//!   runs on the library runtime: one per process, multi-thread, started on first need.
//! - A blocking call made on a library thread (a callback calling back into cloudauth) runs on
//!   the library runtime through `block_in_place`, so it neither deadlocks nor nests runtimes.
//!
//! Both are [`Owned`] by the fork generation that built them: a child of fork() abandons the
//! inherited runtimes (their epoll and sockets are the parent's) and builds its own.

use crate::error::{Code, Error, Result};
use crate::fork::{self, Owned};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::atomic::{AtomicPtr, Ordering};
use tokio::runtime::{Builder, Runtime};

thread_local! {
    static LOCAL: RefCell<Option<Owned<Runtime>>> = const { RefCell::new(None) };
    /// Set on the library runtime's threads: the generation of the runtime they belong to.
    static LIBRARY_THREAD: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The library runtime of the current generation (older ones are leaked, never dropped).
static LIBRARY: AtomicPtr<Owned<Runtime>> = AtomicPtr::new(std::ptr::null_mut());

/// Worker threads of the library runtime: one less than the CPUs, 1 to 4. Async I/O needs
/// few, and every extra worker is one more thread the program's own threads (and, on one
/// machine, the server) compete with: with 64 requests in flight on 2 vCPUs, 1 worker did
/// 42.4k req/s and 2 workers 39.9k (`bench/compare.sh OTHER 5 async`). Callbacks that block
/// run through `block_in_place`, which hands the worker's other tasks to a fresh thread.
fn library_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    cpus.saturating_sub(1).clamp(1, 4)
}

/// True on a worker or blocking thread of this process's library runtime.
pub fn on_library_thread() -> bool {
    LIBRARY_THREAD
        .get()
        .is_some_and(|g| g == fork::generation())
}

/// Runs `work` to completion on the calling thread, on the runtime that thread should use.
pub fn block_on<F: Future>(work: F) -> Result<F::Output> {
    if on_library_thread() {
        let library = library()?;
        return Ok(tokio::task::block_in_place(|| library.block_on(work)));
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid(
            "cloudauth's blocking calls cannot run inside an async runtime; call them from a plain thread or use the async calls",
        ));
    }
    LOCAL.with(|cell| {
        let stale = cell.borrow().as_ref().is_some_and(|rt| !rt.is_current());
        if stale || cell.borrow().is_none() {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| cannot_start("I/O runtime", &e))?;
            // An inherited runtime is leaked by `Owned`, never dropped.
            *cell.borrow_mut() = Some(Owned::new(runtime));
        }
        let guard = cell.borrow();
        let runtime = guard.as_ref().and_then(Owned::get).expect("built above");
        // A write on a connection the library cannot mark (reqwest's) blocks SIGPIPE until here.
        Ok(crate::sigpipe::scope(|| runtime.block_on(work)))
    })
}

/// The process's library runtime, started on first call (and again in a child of fork()).
pub fn library() -> Result<&'static Runtime> {
    loop {
        let seen = LIBRARY.load(Ordering::Acquire);
        // SAFETY: pointers stored in LIBRARY come from Box::into_raw and are never freed.
        if let Some(runtime) = unsafe { seen.as_ref() }.and_then(Owned::get) {
            return Ok(runtime);
        }
        let generation = fork::generation();
        let runtime = Builder::new_multi_thread()
            .worker_threads(library_workers())
            .thread_name("cloudauth")
            .enable_all()
            .on_thread_start(move || {
                LIBRARY_THREAD.set(Some(generation));
                crate::sigpipe::block_for_thread();
            })
            .build()
            .map_err(|e| cannot_start("library threads", &e))?;
        let built = Box::into_raw(Box::new(Owned::new(runtime)));
        if LIBRARY
            .compare_exchange(seen, built, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if !seen.is_null() {
                // The inherited runtime: kept reachable, never dropped.
                fork::keep(seen);
            }
        } else {
            // Another thread started one first: stop ours without waiting for its threads.
            // SAFETY: `built` was never shared.
            let ours = unsafe { Box::from_raw(built) };
            if let Some(rt) = ours.into_inner() {
                rt.shutdown_background();
            }
        }
    }
}

fn cannot_start(what: &str, e: &std::io::Error) -> Error {
    Error::new(
        Code::CLOUDAUTH_ERR_INTERNAL,
        format!("cannot start cloudauth's {what}: {e}"),
    )
}
