//! fork() detection (docs/runtime.md).
//!
//! After fork() only the forking thread runs in the child, and it inherits every descriptor
//! (epoll instances, pooled sockets) and the state of every lock other threads held. Whatever
//! was built for I/O or held across a fetch records the [`generation`] it was built in; code
//! that finds an older generation abandons it (leaks it, never drops it: its destructor would
//! touch the parent's descriptors) and builds anew.
//!
//! The generation moves in a `pthread_atfork` child handler, and also when `getpid()` changed
//! (a raw `clone` or `_Fork` without the handlers). The pid check is a syscall, paid on every
//! request (several times) if made each call; a page marked `MADV_WIPEONFORK` answers the same
//! question with one load: the kernel hands every child of fork, however made, that page
//! zeroed, so while it still holds its mark no fork happened since the pid was last checked.
//! Where the kernel lacks it (before Linux 4.14) every call checks the pid. [`generation`] is
//! for the slow paths (sending a request, fetching a token), never the cached-token read.
//!
//! What a child abandons stays reachable: [`keep`] holds it in a process-wide list that is
//! never freed, so a leak checker (valgrind, LeakSanitizer) in a pre-fork server's workers
//! sees memory still in use, not memory lost.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static PID: AtomicI32 = AtomicI32::new(0);
/// A word in a `MADV_WIPEONFORK` page: 1 in the process that last checked its pid, 0 in a
/// child of fork() until it has; null if the kernel has no such pages.
static MARK: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

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
        MARK.store(wipe_on_fork_word(), Ordering::Release);
    });
}

/// A fresh page the kernel zeroes in every child; its first word set to 1. Never unmapped.
#[cfg(target_os = "linux")]
fn wipe_on_fork_word() -> *mut AtomicU64 {
    const PAGE: usize = 4096;
    // SAFETY: a new anonymous mapping; nothing else refers to it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        if libc::madvise(p, PAGE, libc::MADV_WIPEONFORK) != 0 {
            libc::munmap(p, PAGE);
            return std::ptr::null_mut();
        }
        let word = p.cast::<AtomicU64>();
        (*word).store(1, Ordering::Release);
        word
    }
}

#[cfg(not(target_os = "linux"))]
fn wipe_on_fork_word() -> *mut AtomicU64 {
    std::ptr::null_mut()
}

/// One abandoned value in the list of what this process keeps ([`keep`]).
struct Kept<T> {
    next: *mut u8,
    _value: T,
}

/// The newest [`Kept`] node; each links to the one before. Never freed.
static KEPT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// Keeps `value` for the rest of the process without dropping it: for what a child of fork()
/// inherited and must not destroy (its destructor would touch the parent's descriptors or
/// locks). Unlike `mem::forget`, the value stays reachable from a static, so a leak checker
/// does not count it as lost. Lock-free: a lock here could be held by a thread fork() left
/// behind.
pub fn keep<T>(value: T) {
    let node = Box::into_raw(Box::new(Kept {
        next: std::ptr::null_mut(),
        _value: value,
    }));
    let mut head = KEPT.load(Ordering::Acquire);
    loop {
        // SAFETY: `node` is ours until the exchange below publishes it.
        unsafe { (*node).next = head };
        match KEPT.compare_exchange_weak(head, node.cast(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// The fork generation of this process: equal values mean "same process as when built".
pub fn generation() -> u64 {
    install();
    let mark = MARK.load(Ordering::Acquire);
    // SAFETY: a non-null MARK points into a page that is never unmapped.
    let marked = unsafe { mark.as_ref() };
    if marked.is_some_and(|m| m.load(Ordering::Acquire) != 0) {
        return GENERATION.load(Ordering::Acquire);
    }
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
    let generation = GENERATION.load(Ordering::Acquire);
    // After the generation moved: a thread that sees the mark sees the new generation.
    if let Some(m) = marked {
        m.store(1, Ordering::Release);
    }
    generation
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
        let value = unsafe { std::mem::ManuallyDrop::take(&mut this.value) };
        if this.is_current() {
            Some(value)
        } else {
            keep(value);
            None
        }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: dropped or kept once, here, and never touched again.
        if self.generation == generation() {
            unsafe { std::mem::ManuallyDrop::drop(&mut self.value) }
        } else {
            keep(unsafe { std::mem::ManuallyDrop::take(&mut self.value) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `child` in a child process made by `make_child` (0 in the child, its pid in the
    /// parent); true if it exited 0.
    fn in_child(make_child: impl FnOnce() -> libc::pid_t, child: impl FnOnce() -> bool) -> bool {
        let pid = make_child();
        if pid == 0 {
            let ok = child();
            // SAFETY: leaves the child at once, running nothing of the parent's.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }

    #[test]
    fn the_generation_moves_in_a_child_of_fork() {
        let parent = generation();
        assert_eq!(generation(), parent, "no fork, no move");
        // SAFETY: the child only reads atomics and exits.
        let ok = in_child(
            || unsafe { libc::fork() },
            || generation() != parent && generation() == generation(),
        );
        assert!(ok, "fork() with its handlers");
        assert_eq!(generation(), parent, "the parent's stays");
    }

    /// What a child abandons is kept, never dropped: its destructor would touch the parent's
    /// descriptors. (That it stays reachable is what tests/c/test_fork.c checks, under valgrind.)
    #[test]
    fn an_owned_value_from_before_a_fork_is_kept_not_dropped() {
        use std::sync::atomic::AtomicBool;
        static DROPPED: AtomicBool = AtomicBool::new(false);
        struct Noisy;
        impl Drop for Noisy {
            fn drop(&mut self) {
                DROPPED.store(true, Ordering::SeqCst);
            }
        }
        let owned = Owned::new(Noisy);
        // SAFETY: the child only drops a value and reads atomics, then exits.
        let ok = in_child(
            || unsafe { libc::fork() },
            || {
                let before = KEPT.load(Ordering::SeqCst);
                drop(owned_in_child(&owned));
                !DROPPED.load(Ordering::SeqCst) && KEPT.load(Ordering::SeqCst) != before
            },
        );
        assert!(ok, "dropped in the child, or not kept");
        drop(owned);
        assert!(DROPPED.load(Ordering::SeqCst), "the parent's own drop runs");
    }

    /// The child's copy of `owned` (fork duplicated it): moved out bitwise, as the child owns it.
    fn owned_in_child<T>(owned: &Owned<T>) -> Owned<T> {
        // SAFETY: in the child the parent's `owned` is never used again.
        unsafe { std::ptr::read(owned) }
    }

    /// A raw clone runs no atfork handler: the wiped page (or the pid) tells.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_generation_moves_in_a_child_of_a_raw_clone() {
        let parent = generation();
        let raw_fork = || {
            // SAFETY: clone(SIGCHLD) without CLONE_VM is fork() without glibc's wrapper.
            unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) as libc::pid_t }
        };
        let ok = in_child(raw_fork, || {
            generation() != parent && generation() == generation()
        });
        assert!(ok, "raw clone");
        assert_eq!(generation(), parent);
    }
}
