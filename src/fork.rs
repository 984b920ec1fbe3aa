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
