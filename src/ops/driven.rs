//! A caller-driven queue: its operations run on the thread that waits on it, inside the wait
//! (as `curl_multi_perform` runs libcurl's transfers), on a current-thread runtime and a
//! connection pool of the queue's own. No request crosses a thread: the starting call only
//! records the operation, the waiting call runs it and takes its completion, so the library
//! threads' hand-offs (submitting thread → worker → completion) are gone.
//!
//! A token fetch an operation needs still runs where the session's single flight runs it (a
//! library thread); the operation waits for it without holding up the others. Nothing runs
//! while no thread waits: an operation's timeouts count from its start, so a program that
//! waits late sees them expire at its next wait.
//!
//! The runtime and its clients are [`Owned`] by their fork generation: a child of fork()
//! cannot use the queue (the queue refuses it) and never drops the parent's sockets.

use super::queue::Queue;
use super::{authorized_request, operation, Op};
use crate::error::{Code, Error, Result};
use crate::fork::Owned;
use crate::http::request::Response;
use crate::http::transport::ClientPool;
use crate::session::Session;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Driver {
    /// `None` only while dropping.
    state: Option<Owned<State>>,
    /// Operations started since the last wait: spawned by the waiter, from inside its
    /// runtime, where a spawn is a push on a local queue (no wake-up syscall).
    started: Mutex<Vec<Task>>,
    /// Wakes a waiter already inside the runtime when another thread starts an operation.
    wake: Notify,
}

struct State {
    runtime: Runtime,
    clients: Mutex<ClientPool>,
}

impl Driver {
    pub fn new() -> Result<Driver> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    Code::CLOUDAUTH_ERR_INTERNAL,
                    format!("cannot start the caller-driven queue's I/O runtime: {e}"),
                )
            })?;
        Ok(Driver {
            state: Some(Owned::new(State {
                runtime,
                clients: Mutex::new(ClientPool::default()),
            })),
            started: Mutex::new(Vec::new()),
            wake: Notify::new(),
        })
    }

    fn state(&self) -> Result<&State> {
        self.state.as_ref().and_then(Owned::get).ok_or_else(|| {
            Error::invalid(
                "the completion queue was created before fork(); create a new one in this process",
            )
        })
    }

    fn start(&self, task: Task) {
        lock(&self.started).push(task);
        self.wake.notify_one();
    }

    /// Runs the queue's operations on the calling thread until a completion is in `queue`
    /// (then takes it) or `timeout` passed (`None`: no limit). Timeout zero still gives the
    /// operations one turn: their ready I/O is done, as `curl_multi_perform` does it.
    pub fn wait<T>(&self, queue: &Queue<T>, timeout: Option<Duration>) -> Result<Option<T>> {
        queue.check_process()?;
        let state = self.state()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::invalid(
                "a caller-driven queue cannot be waited on inside an async runtime or a cloudauth callback",
            ));
        }
        let turn = || {
            state.runtime.block_on(async {
                let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
                let mut turned = false;
                loop {
                    for task in std::mem::take(&mut *lock(&self.started)) {
                        tokio::spawn(task);
                    }
                    if let Some(item) = queue.pop() {
                        return Some(item);
                    }
                    if timeout == Some(Duration::ZERO) {
                        if turned {
                            return None;
                        }
                        turned = true;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let until = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        biased;
                        _ = queue.pushed() => {}
                        _ = self.wake.notified() => {}
                        _ = until => return queue.pop(),
                    }
                }
            })
        };
        // As for `runtime::block_on`: SIGPIPE blocked by a reqwest hop is restored here.
        Ok(crate::sigpipe::scope(turn))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Operations still in flight are dropped with the runtime, unfinished (their
        // completions would go to a queue nobody can take from). Not waiting for anything:
        // the queue may be freed on a library thread.
        if let Some(state) = self.state.take().and_then(Owned::into_inner) {
            state.runtime.shutdown_background();
        }
        lock(&self.started).clear();
    }
}

impl Session {
    /// [`Session::request_async`] as an operation of a caller-driven queue: it runs inside
    /// [`Driver::wait`], and `done` runs there too.
    pub fn request_driven<'a>(
        &self,
        driver: &Driver,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        body: &[u8],
        done: impl FnOnce(Result<Response>) + Send + 'static,
    ) -> Result<Op> {
        let inner = self.inner();
        let request = inner.api_request(method, target, headers, body)?;
        // Connections belong to the runtime that opened them: this queue's own pool.
        let client = lock(&driver.state()?.clients).client(inner.api_transport())?;
        let (op, task) = operation(inner, done, |inner| async move {
            inner.api_transport().notice_closed().await;
            authorized_request(&inner, client, &request).await
        });
        driver.start(Box::pin(task));
        Ok(op)
    }

    /// [`Session::token_async`] as an operation of a caller-driven queue.
    pub fn token_driven(
        &self,
        driver: &Driver,
        done: impl FnOnce(Result<String>) + Send + 'static,
    ) -> Result<Op> {
        driver.state()?;
        let (op, task) = operation(self.inner(), done, |inner| async move {
            let token = inner.cache.token_async(&*inner).await?;
            Ok(token.value().to_owned())
        });
        driver.start(Box::pin(task));
        Ok(op)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
