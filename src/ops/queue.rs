//! A completion queue: finished operations (and events) wait here until a thread of the
//! program takes them, for hosts that must not run their own code on library threads. Mono,
//! for one, waits at exit for every foreign thread that ever ran managed code and crashes if
//! one enters managed code while it shuts down; with a queue, only the host's own thread does.
//!
//! The wait is a `poll` on an eventfd, not a condvar: a signal ends it early, which is how a
//! runtime stops a thread that waits in native code (a futex wait would be restarted). The
//! eventfd is also handed out, for event loops (asyncio's `add_reader`, epoll, libuv) that
//! wait on it themselves and then take completions without waiting.
//!
//! The eventfd counts pushes; a waiter resets it (`drain`) before it looks at the items again,
//! so it is readable whenever an item may be waiting, and not readable once a consumer has
//! found the queue empty after a reset: no lost wake-up, no busy loop.
//!
//! A caller-driven queue (`ops::driven`) has no eventfd: its only waiter sleeps in the queue's
//! own runtime, and a push wakes it through a `Notify`.

use crate::error::{Code, Error, Result};
use crate::fork;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    wake: Wake,
    /// A child of fork() shares the eventfd with its parent; it must make its own queue.
    /// (The fork generation, not the pid: `getpid` is a syscall, and it was paid three times
    /// per operation.)
    generation: u64,
}

enum Wake {
    /// Non-zero after a push that no waiter has reset yet.
    Fd(OwnedFd),
    /// A caller-driven queue's: the waiter is a task of the queue's runtime.
    Task(Notify),
}

impl<T> Queue<T> {
    pub fn new() -> Result<Self> {
        // SAFETY: plain syscall; the fd is owned from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::new(
                Code::CLOUDAUTH_ERR_INTERNAL,
                format!(
                    "creating the completion queue failed: eventfd: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        Ok(Queue {
            items: Mutex::new(VecDeque::new()),
            // SAFETY: `fd` is a new descriptor nobody else owns.
            wake: Wake::Fd(unsafe { OwnedFd::from_raw_fd(fd) }),
            generation: fork::generation(),
        })
    }

    /// A queue whose waiter runs a runtime of its own (`ops::driven`): no eventfd, so a push
    /// from the waiting thread itself costs no syscall.
    pub fn for_driver() -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            wake: Wake::Task(Notify::new()),
            generation: fork::generation(),
        }
    }

    /// An error when this process is a child of fork() and the queue its parent's.
    pub fn check_process(&self) -> Result<()> {
        if self.generation == fork::generation() {
            return Ok(());
        }
        Err(Error::invalid(
            "the completion queue was created before fork(); create a new one in this process",
        ))
    }

    pub fn push(&self, item: T) {
        // In a child of fork() nobody takes from the parent's queue: drop, and do not wake the
        // parent through the shared eventfd.
        if self.generation != fork::generation() {
            return;
        }
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(item);
        match &self.wake {
            Wake::Fd(ready) => {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a live u64. It cannot fail short of 2^64-1
                // pending counts.
                unsafe { libc::write(ready.as_raw_fd(), (&one as *const u64).cast(), 8) };
            }
            Wake::Task(pushed) => pushed.notify_one(),
        }
    }

    /// For a caller-driven queue's waiter: done after a push (at once if one came since the
    /// last call: `Notify` keeps a permit). Never done for an eventfd queue.
    pub async fn pushed(&self) {
        match &self.wake {
            Wake::Task(pushed) => pushed.notified().await,
            Wake::Fd(_) => std::future::pending().await,
        }
    }

    pub fn pop(&self) -> Option<T> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// The descriptor that is readable while an item may be waiting (see the module's doc);
    /// `None` for a caller-driven queue.
    pub fn fd(&self) -> Option<i32> {
        match &self.wake {
            Wake::Fd(ready) => Some(ready.as_raw_fd()),
            Wake::Task(_) => None,
        }
    }

    /// Resets the eventfd. EAGAIN (already zero, or another waiter reset it) is fine.
    fn drain(&self, ready: i32) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        unsafe { libc::read(ready, (&mut count as *mut u64).cast(), 8) };
    }

    /// The next item; `None` when none arrived within `timeout` (`None`: no limit), or sooner
    /// when a signal interrupted the wait.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<T>> {
        self.check_process()?;
        let Some(ready) = self.fd() else {
            return Err(Error::new(
                Code::CLOUDAUTH_ERR_INTERNAL,
                "a caller-driven queue is waited on through its driver",
            ));
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(item) = self.pop() {
                return Ok(Some(item));
            }
            let ms = match deadline {
                None => -1,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    // Rounded up: poll must not end before the deadline.
                    Some(left) if !left.is_zero() => {
                        left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
                    }
                    _ => {
                        // Empty at the deadline: reset, then look once more, so an item
                        // whose count the reset took is not left behind.
                        self.drain(ready);
                        return Ok(self.pop());
                    }
                },
            };
            let mut pfd = libc::pollfd {
                fd: ready,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    return Ok(None);
                }
                return Err(Error::new(
                    Code::CLOUDAUTH_ERR_INTERNAL,
                    format!("waiting on the completion queue failed: poll: {e}"),
                ));
            }
            if n > 0 {
                self.drain(ready);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn items_arrive_in_order_and_a_wait_times_out() {
        let q = Queue::new().unwrap();
        q.push(1);
        q.push(2);
        assert_eq!(q.wait(Some(Duration::ZERO)).unwrap(), Some(1));
        assert_eq!(q.wait(None).unwrap(), Some(2));
        let t = Instant::now();
        assert_eq!(q.wait(Some(Duration::from_millis(50))).unwrap(), None);
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    fn readable(q: &Queue<i32>) -> bool {
        let mut pfd = libc::pollfd {
            fd: q.fd().unwrap(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn the_fd_is_readable_exactly_until_a_consumer_found_the_queue_empty() {
        let q = Queue::new().unwrap();
        assert!(!readable(&q));
        q.push(1);
        q.push(2);
        assert!(readable(&q));
        assert_eq!(q.wait(Some(Duration::ZERO)).unwrap(), Some(1));
        assert!(readable(&q), "an item is still waiting");
        assert_eq!(q.wait(Some(Duration::ZERO)).unwrap(), Some(2));
        assert_eq!(q.wait(Some(Duration::ZERO)).unwrap(), None);
        assert!(!readable(&q), "empty and reset: an event loop sleeps");
        q.push(3);
        assert!(readable(&q));
    }

    #[test]
    fn every_item_reaches_one_of_several_waiters() {
        let q = Arc::new(Queue::new().unwrap());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(v) = q.wait(Some(Duration::from_millis(500))).unwrap() {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        for i in 0..1000 {
            q.push(i);
        }
        let mut all: Vec<i32> = waiters
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }
}
