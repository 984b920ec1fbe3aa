//! A request's body: bytes held whole (nearly every request), or read from the caller's source
//! while the request is written, so an upload of any size needs the memory of one piece.
//!
//! A source is read on the thread that sends (the caller's, inside its call). It is shared
//! between the exchange, which rewinds it before a resend, and the body a carrier polls; when
//! the call returns it is [closed](Streamed::close), so a connection that still holds the body
//! afterwards (an answer came before the whole body was written) fails instead of calling back.

use crate::error::{Code, Error, Result};
use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

/// The most one read asks of a source: large pieces mean fewer writes (hyper writes each
/// piece as it is, without copying it again).
const PIECE: usize = 256 << 10;

/// The caller's body, read piece by piece.
pub trait BodySource: Send {
    /// Its length in bytes (sent as `Content-Length`), or `None`: unknown, sent chunked.
    fn length(&self) -> Option<u64>;
    /// Writes the next bytes at the start of `buf` and says how many (the first `n` of `buf`
    /// are then initialized); `Ok(0)` at the end. `buf` is not zeroed first: a large piece
    /// would cost as much again to clear as to fill.
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize>;
    /// Back to its start for a resend; false: it cannot be sent again.
    fn rewind(&mut self) -> bool;
}

/// What a request carries.
#[derive(Clone)]
pub enum Payload {
    Bytes(Bytes),
    Streamed(Streamed),
}

impl Payload {
    /// Nothing (a GET made from a redirected request).
    pub fn empty() -> Payload {
        Payload::Bytes(Bytes::new())
    }

    /// The length when known (for messages and `Debug`).
    pub fn length(&self) -> Option<u64> {
        match self {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Streamed(s) => s.length,
        }
    }

    /// Ready to be sent again: held bytes always are; a source that was read from must be
    /// rewound, and false means it could not be.
    pub fn ready_to_resend(&self) -> bool {
        match self {
            Payload::Bytes(_) => true,
            Payload::Streamed(s) => s.ready_to_resend(),
        }
    }

    /// The body for one send, which must end before `deadline`.
    pub fn outgoing(&self, deadline: Instant) -> Outgoing {
        match self {
            Payload::Bytes(b) => Outgoing::Whole(Full::new(b.clone())),
            Payload::Streamed(s) => Outgoing::Read(Reading {
                shared: s.clone(),
                left: s.length,
                deadline,
                spare: BytesMut::new(),
            }),
        }
    }

    /// Why a send failed, when its source failed it (an error of the caller's own, or a source
    /// that ended early or ran long), rather than the connection.
    pub fn failure(&self) -> Option<Error> {
        match self {
            Payload::Bytes(_) => None,
            Payload::Streamed(s) => s.state().failed.take(),
        }
    }
}

/// A source shared between the exchange and the bodies sent from it.
#[derive(Clone)]
pub struct Streamed {
    shared: Arc<Mutex<State>>,
    length: Option<u64>,
}

struct State {
    /// `None` once the call that lent it returned.
    source: Option<Box<dyn BodySource>>,
    /// A byte has been read since the start (or the last rewind).
    started: bool,
    /// Why the last send's body failed, for the caller's message.
    failed: Option<Error>,
}

impl Streamed {
    pub fn new(source: Box<dyn BodySource>) -> Streamed {
        Streamed {
            length: source.length(),
            shared: Arc::new(Mutex::new(State {
                source: Some(source),
                started: false,
                failed: None,
            })),
        }
    }

    /// Lets go of the source: a body still held by a connection fails from now on.
    pub fn close(&self) {
        self.state().source = None;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held (a source's, caught at the C boundary) leaves the
        // state as it was: still sound to read.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ready_to_resend(&self) -> bool {
        let mut state = self.state();
        if !state.started {
            return true;
        }
        let rewound = state.source.as_mut().is_some_and(|s| s.rewind());
        state.started = !rewound;
        rewound
    }
}

/// The body of one send.
pub enum Outgoing {
    Whole(Full<Bytes>),
    Read(Reading),
}

/// A send's body read from a [`Streamed`] source.
pub struct Reading {
    shared: Streamed,
    /// Of a known length, what is still to come.
    left: Option<u64>,
    deadline: Instant,
    /// Where the pieces are read into: once hyper has written and dropped the pieces cut from
    /// it, `reserve` takes the same memory back, so a long body reuses one buffer (a fresh
    /// 256 KiB a piece cost page faults: 1.3× libcurl's CPU per MiB).
    spare: BytesMut,
}

/// What hyper (and reqwest) are told when a source fails; the reason is kept for the caller
/// ([`Payload::failure`]).
#[derive(Debug)]
pub struct SourceFailed;

impl std::fmt::Display for SourceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body's source failed")
    }
}

impl std::error::Error for SourceFailed {}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = SourceFailed;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, SourceFailed>>> {
        match self.get_mut() {
            Outgoing::Whole(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Outgoing::Read(reading) => Poll::Ready(reading.next().transpose()),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Whole(full) => full.is_end_stream(),
            Outgoing::Read(reading) => reading.left == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Whole(full) => full.size_hint(),
            Outgoing::Read(reading) => reading
                .left
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

impl Reading {
    /// The next piece, `None` at the end. The caller's source blocks this thread while it
    /// reads: that is the caller's own (its call is waiting for this request).
    fn next(&mut self) -> std::result::Result<Option<Frame<Bytes>>, SourceFailed> {
        let Reading {
            shared,
            left,
            deadline,
            spare,
        } = self;
        let mut state = shared.state();
        match read(&mut state, spare, left, shared.length, *deadline) {
            Ok(piece) => Ok(piece.map(Frame::data)),
            Err(e) => {
                state.failed = Some(e);
                Err(SourceFailed)
            }
        }
    }
}

/// The next piece from `state`'s source; `left` is what a known length still has to come.
fn read(
    state: &mut State,
    spare: &mut BytesMut,
    left: &mut Option<u64>,
    declared: Option<u64>,
    deadline: Instant,
) -> Result<Option<Bytes>> {
    if *left == Some(0) {
        return Ok(None);
    }
    // The time a source takes counts: hyper may write many pieces in one turn.
    if Instant::now() >= deadline {
        return Err(Error::new(
            Code::CLOUDAUTH_ERR_TIMEOUT,
            "timed out (reading the request body from its source)",
        ));
    }
    let Some(source) = state.source.as_mut() else {
        return Err(Error::new(
            Code::CLOUDAUTH_ERR_CANCELLED,
            "the request body's source was asked for after its call returned",
        ));
    };
    let want = left.map_or(PIECE, |left| left.min(PIECE as u64) as usize);
    spare.reserve(want);
    let n = source.read(&mut spare.spare_capacity_mut()[..want])?;
    state.started = true;
    if n > want {
        return Err(Error::invalid(format!(
            "the request body's source said it wrote {n} bytes into a buffer of {want}"
        )));
    }
    // SAFETY: the source wrote the first `n` bytes (its contract), and n <= want <= capacity;
    // `spare` is empty (every earlier piece was split off).
    unsafe { spare.set_len(n) };
    let piece = spare.split();
    let Some(left) = left.as_mut() else {
        // Unknown length: chunked, ended by the source.
        return Ok((n > 0).then(|| piece.freeze()));
    };
    let total = declared.unwrap_or(0);
    if n == 0 {
        return Err(Error::invalid(format!(
            "the request body's source ended after {} of the {total} bytes it declared",
            total - *left
        )));
    }
    *left -= n as u64;
    // Checked before the last piece goes, so a server never gets a whole request whose source
    // was wrong.
    if *left == 0 && source.read(&mut [MaybeUninit::uninit()])? > 0 {
        return Err(Error::invalid(format!(
            "the request body's source gave more than the {total} bytes it declared"
        )));
    }
    Ok(Some(piece.freeze()))
}
