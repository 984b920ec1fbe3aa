//! SIGPIPE. A write to a connection whose peer has gone raises it, and its default action ends
//! the process: a C program that never set it would die of a server closing a connection under
//! an upload, or of a Redis server restarting. Rust programs, Python, the JVM, .NET and Node
//! ignore it; C programs do not, and a library must not change the process's dispositions. So:
//!
//! - the direct path writes with `MSG_NOSIGNAL` (`http::socket`): no signal is raised at all;
//! - threads the library starts block SIGPIPE for their life (a write then fails with EPIPE);
//! - on a caller's thread, writes the library cannot mark (reqwest's connections, Redis) run
//!   with SIGPIPE blocked ([`hold`] where they start, [`scope`] around the call), and a SIGPIPE
//!   they raised is taken before the caller's mask comes back.

use std::cell::Cell;
use std::mem::MaybeUninit;

thread_local! {
    /// The caller's mask while a hold is on, to put back.
    static HELD: Cell<Option<libc::sigset_t>> = const { Cell::new(None) };
    /// A thread of the library's: SIGPIPE is blocked for good.
    static BLOCKED: Cell<bool> = const { Cell::new(false) };
}

fn pipe() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set; sigaddset adds a valid signal to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

/// Blocks SIGPIPE on this thread for its life: for threads the library starts.
pub fn block_for_thread() {
    // SAFETY: a valid set; the old mask is not asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &pipe(), std::ptr::null_mut()) };
    BLOCKED.set(true);
}

/// Blocks SIGPIPE on this thread until the enclosing [`scope`] ends, unless it is blocked
/// already (by the application, or for the thread's life).
pub fn hold() {
    if BLOCKED.get() || HELD.get().is_some() {
        return;
    }
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a valid set; `old` is written by the call.
    let old = unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe(), old.as_mut_ptr());
        old.assume_init()
    };
    // SAFETY: `old` is an initialized set.
    if unsafe { libc::sigismember(&old, libc::SIGPIPE) } != 1 {
        HELD.set(Some(old));
    }
}

/// Runs `work`; a [`hold`] begun inside it ends with it: a SIGPIPE raised meanwhile is taken,
/// and the thread's mask is what it was.
pub fn scope<T>(work: impl FnOnce() -> T) -> T {
    let outer = HELD.get().is_some();
    let out = work();
    if !outer {
        release();
    }
    out
}

/// [`scope`] with the hold on from the start (Redis commands on the caller's thread).
pub fn guarded<T>(work: impl FnOnce() -> T) -> T {
    scope(|| {
        hold();
        work()
    })
}

fn release() {
    let Some(old) = HELD.take() else {
        return;
    };
    let set = pipe();
    // SAFETY: valid sets and a zero timeout; sigtimedwait only takes a SIGPIPE that is
    // pending, so it never blocks.
    unsafe {
        let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
        if libc::sigpending(pending.as_mut_ptr()) == 0
            && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
        {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked() -> bool {
        let mut now = MaybeUninit::<libc::sigset_t>::uninit();
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), now.as_mut_ptr());
            libc::sigismember(now.as_ptr(), libc::SIGPIPE) == 1
        }
    }

    /// A SIGPIPE raised while held is taken, never delivered (its default action would end
    /// this test process), and the mask is the caller's again after.
    #[test]
    fn a_sigpipe_raised_in_a_scope_is_taken_and_the_mask_restored() {
        std::thread::spawn(|| {
            assert!(!blocked());
            let raised = guarded(|| {
                assert!(blocked());
                // SAFETY: raises SIGPIPE at this thread, where it is blocked.
                unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) };
                scope(hold);
                assert!(blocked(), "an inner scope leaves the outer hold on");
                true
            });
            assert!(raised);
            assert!(!blocked());
        })
        .join()
        .unwrap();
    }
}
