//! Asynchronous operations: a request or a token, run on the library runtime, finished by a
//! completion that runs exactly once on a library thread (docs/runtime.md).
//!
//! An operation ends in one of three ways, whichever comes first: its work finishes, it is
//! cancelled (`Op::cancel`), or its session is freed. Cancelled work is dropped at its next
//! await point; a token fetch it started runs on (other callers may want its token), so
//! cancellation never leaves the session without its single flight.

use crate::error::{Code, Error, Result};
use crate::http::clients::Clients;
use crate::http::request::{ApiRequest, Response};
use crate::runtime;
use crate::session::{Inner, Session};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

pub mod driven;
pub mod queue;

/// A handle on an operation in flight; dropping it neither cancels nor waits.
pub struct Op {
    state: Arc<OpState>,
}

#[derive(Default)]
struct OpState {
    cancelled: AtomicBool,
    wake: Notify,
}

impl Op {
    /// Asks the operation to stop; its completion then reports `CLOUDAUTH_ERR_CANCELLED`
    /// unless the work had already finished.
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::Release);
        self.state.wake.notify_one();
    }
}

impl OpState {
    async fn cancelled(&self) {
        while !self.cancelled.load(Ordering::Acquire) {
            self.wake.notified().await;
        }
    }
}

impl Session {
    /// Starts an authorized request (the checks, token handling and 401 resend of
    /// [`Session::request`]); `done` gets the outcome on a library thread. Errors in the
    /// arguments are returned at once, and then `done` is never called.
    pub fn request_async<'a>(
        &self,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        body: &[u8],
        done: impl FnOnce(Result<Response>) + Send + 'static,
    ) -> Result<Op> {
        let request = self.inner().api_request(method, target, headers, body)?;
        spawn(self.inner(), done, |inner| async move {
            let client = inner.library_api_client()?;
            authorized_request(&inner, client, &request).await
        })
    }

    /// Starts getting a valid token (fetched if needed, without blocking any thread while it
    /// waits); `done` gets it on a library thread.
    pub fn token_async(&self, done: impl FnOnce(Result<String>) + Send + 'static) -> Result<Op> {
        spawn(self.inner(), done, |inner| async move {
            let token = inner.cache.token_async(&*inner).await?;
            Ok(token.value().to_owned())
        })
    }
}

/// The token, the send, and after a 401 the refused hop once more with a fresh token (as
/// [`Session::request`]).
async fn authorized_request(
    inner: &Inner,
    client: Clients,
    request: &ApiRequest,
) -> Result<Response> {
    let mut exchange = inner.exchange(request);
    let token = inner.cache.token_async(inner).await?;
    if let Some(response) = inner
        .send(client.clone(), &mut exchange, &token, true)
        .await?
    {
        return Ok(response);
    }
    let fresh = inner.cache.token_async(inner).await?;
    inner
        .send(client, &mut exchange, &fresh, false)
        .await?
        .ok_or_else(|| Error::new(Code::CLOUDAUTH_ERR_INTERNAL, "a second 401 resend"))
}

fn spawn<T, F>(
    inner: &Arc<Inner>,
    done: impl FnOnce(Result<T>) + Send + 'static,
    work: impl FnOnce(Arc<Inner>) -> F + Send + 'static,
) -> Result<Op>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let library = runtime::library()?;
    let (op, task) = operation(inner, done, work);
    library.spawn(task);
    Ok(op)
}

/// An operation's handle and the task that runs it to its one completion, on whichever
/// runtime the caller spawns it.
fn operation<T, F>(
    inner: &Arc<Inner>,
    done: impl FnOnce(Result<T>) + Send + 'static,
    work: impl FnOnce(Arc<Inner>) -> F + Send + 'static,
) -> (Op, impl Future<Output = ()> + Send + 'static)
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let state = Arc::new(OpState::default());
    let op = Op {
        state: state.clone(),
    };
    let inner = inner.clone();
    let mut closed = inner.closed.subscribe();
    inner.ensure_refresher();
    let task = async move {
        let result = tokio::select! {
            biased;
            _ = state.cancelled() => Err(Error::new(
                Code::CLOUDAUTH_ERR_CANCELLED,
                "the operation was cancelled",
            )),
            _ = closed.wait_for(|c| *c) => Err(Error::new(
                Code::CLOUDAUTH_ERR_CANCELLED,
                "the session was freed while the operation was in flight",
            )),
            r = work(inner) => r,
        };
        // A panicking Rust completion must not take a library thread down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(result)));
    };
    (op, task)
}
