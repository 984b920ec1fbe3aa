//! fork() detection (DESIGN.md, "Runtime model").
//!
//! After fork() only the forking thread runs in the child, and it inherits every descriptor
//! (epoll instances, pooled sockets) and the state of every lock other threads held. Whatever
//! was built for I/O or held across a fetch records the [`generation`] it was built in; code
//! that finds an older generation abandons it (leaks it, never drops it: its destructor would
//! touch the parent's descriptors) and builds anew.
//!
//! The generation moves in a `pthread_atfork` child handler, and also when `getpid()` changed
//! (a raw `clone` without the handlers). The pid check is a syscall, so [`generation`] is for
//! the slow paths (sending a request, fetching a token), never the cached-token read.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    // SAFETY: getpid is async-signal-safe and has no preconditions.
    PID.store(unsafe { libc::getpid() }, Ordering::Release);
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering a handler that only touches atomics.
        PID.store(unsafe { libc::getpid() }, Ordering::Release);
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
}

/// The fork generation of this process: equal values mean "same process as when built".
pub fn generation() -> u64 {
    install();
    // SAFETY: no preconditions.
    let pid = unsafe { libc::getpid() };
    let known = PID.load(Ordering::Acquire);
    if pid != known
        && PID
            .compare_exchange(known, pid, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
    GENERATION.load(Ordering::Acquire)
}

/// Something built in one fork generation, dropped only in that generation.
pub struct Owned<T> {
    generation: u64,
    value: std::mem::ManuallyDrop<T>,
}

impl<T> Owned<T> {
    pub fn new(value: T) -> Self {
        Owned {
            generation: generation(),
            value: std::mem::ManuallyDrop::new(value),
        }
    }

    /// The value if it was built in this process, else `None` (it stays abandoned).
    pub fn get(&self) -> Option<&T> {
        (self.generation == generation()).then_some(&*self.value)
    }

    pub fn get_mut(&mut self) -> Option<&mut T> {
        (self.generation == generation()).then_some(&mut *self.value)
    }

    pub fn is_current(&self) -> bool {
        self.generation == generation()
    }

    /// Takes the value out if it was built in this process.
    pub fn into_inner(self) -> Option<T> {
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the value is moved out exactly once.
        this.is_current()
            .then(|| unsafe { std::mem::ManuallyDrop::take(&mut this.value) })
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if self.generation == generation() {
            // SAFETY: dropped once, here, and never touched again.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.value) }
        }
    }
}
