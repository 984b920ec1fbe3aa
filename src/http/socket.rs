//! The direct path's TCP connection: tokio's, with writes made by `send`/`sendmsg` with
//! `MSG_NOSIGNAL`, so a peer that went away gives EPIPE and never SIGPIPE (see `crate::sigpipe`
//! for why that matters in a C host). Reads are tokio's own.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

pub struct Socket(pub TcpStream);

impl Socket {
    /// Polls `write` until the socket takes bytes or fails (`WouldBlock` waits for readiness).
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(libc::c_int) -> isize,
    ) -> Poll<io::Result<usize>> {
        let fd = self.0.as_raw_fd();
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            let sent = self.0.try_io(Interest::WRITABLE, || match write(fd) {
                n if n >= 0 => Ok(n as usize),
                _ => Err(io::Error::last_os_error()),
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: `buf` is valid for its length during the call.
        self.poll_send(cx, |fd| unsafe {
            libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // At most IOV_MAX slices a call (Linux: 1024); the caller writes the rest next.
        let bufs = &bufs[..bufs.len().min(1024)];
        self.poll_send(cx, |fd| {
            // SAFETY: `IoSlice` has `iovec`'s layout on Unix (std guarantees it); the slices
            // are valid during the call; the header is zeroed but for the vector.
            unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = bufs.len() as _;
                libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
            }
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
