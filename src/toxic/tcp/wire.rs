//! Holding a slicer's next slice until the last one has left the socket,
//! so that each slice goes out as a TCP segment of its own.
//!
//! A write that finds earlier bytes still unsent in the socket (the
//! congestion window full, pacing, autocorking) is appended to them, and
//! they leave as one segment: 1,000 one-byte slices written back to back
//! left as about 840 segments, so the wire did not show what the toxic
//! made. While a slicer acts on a direction, its writer says so on a
//! [`Slicing`] flag, and the [`Wire`] around the socket gives it
//! `TCP_NOTSENT_LOWAT` = 1: the socket then counts as writable only when
//! nothing written is still unsent, its writable edge coming when an ACK
//! lets the rest go, and a flush waits for that. The writer flushes after
//! each slice.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// How long a flush waits for its bytes to leave at most. The wait is for
/// an ACK, which a peer that is not reading may never send; past this the
/// flush returns and the next write waits as any write does.
const MAX_WAIT: Duration = Duration::from_millis(200);

/// Whether a slicer acts on a direction: set by its writer, read by the
/// [`Wire`] under it.
#[derive(Debug, Clone, Default)]
pub struct Slicing(Arc<AtomicBool>);

impl Slicing {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The TCP socket under a stream, if it has one.
pub trait Socket {
    fn tcp(&self) -> Option<&TcpStream>;
}

/// `S`, whose flush waits until the bytes have left the socket while its
/// [`Slicing`] is on.
pub struct Wire<S> {
    inner: S,
    slicing: Slicing,
    /// Whether `TCP_NOTSENT_LOWAT` is set on the socket.
    low: bool,
    /// When a waiting flush gives up, once one waits.
    give_up: Option<Pin<Box<Sleep>>>,
}

impl<S: Socket> Wire<S> {
    /// `inner`, and the flag that its writer sets.
    pub fn new(inner: S) -> (Self, Slicing) {
        let slicing = Slicing::default();
        let wire = Wire {
            inner,
            slicing: slicing.clone(),
            low: false,
            give_up: None,
        };
        (wire, slicing)
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Ready once nothing written is unsent (or [`MAX_WAIT`] has passed).
    fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let on = self.slicing.get();
        let Some(tcp) = self.inner.tcp() else {
            return Poll::Ready(());
        };
        if on != self.low {
            // Back to the system's default (0) when the slicer goes.
            match socket2::SockRef::from(tcp).set_tcp_notsent_lowat(u32::from(on)) {
                Ok(()) => self.low = on,
                Err(e) => tracing::debug!("toxics: cannot set TCP_NOTSENT_LOWAT: {e}"),
            }
        }
        if !self.low {
            return Poll::Ready(());
        }
        loop {
            match tcp.poll_write_ready(cx) {
                Poll::Pending => break,
                // The next write reports the socket's trouble.
                Poll::Ready(Err(_)) => return self.done(),
                Poll::Ready(Ok(())) => {
                    // Not all sent: forget this readiness (unless an edge
                    // came since) and wait for the next edge.
                    match tcp.try_io(Interest::WRITABLE, || all_sent(tcp)) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        _ => return self.done(),
                    }
                }
            }
        }
        let give_up = self
            .give_up
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(MAX_WAIT)));
        if give_up.as_mut().poll(cx).is_ready() {
            tracing::debug!("toxics: a slice waited {MAX_WAIT:?} to leave; writing on");
            return self.done();
        }
        Poll::Pending
    }

    fn done(&mut self) -> Poll<()> {
        self.give_up = None;
        Poll::Ready(())
    }
}

/// `Ok` if nothing written to `tcp` is unsent: with `TCP_NOTSENT_LOWAT` at
/// 1, what `poll` calls writable. The check also arms the socket's
/// writable wake-up when it is not (the kernel wakes a socket only once it
/// was found full). An error or hang-up counts as sent: the next write
/// says what happened.
fn all_sent(tcp: &TcpStream) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(tcp.as_fd(), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO)?;
    let got = fds[0].revents().unwrap_or(PollFlags::empty());
    if got.intersects(PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP) {
        Ok(())
    } else {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Socket + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        ready!(self.poll_sent(cx));
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Socket for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = crate::service::listen::bind_inet("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let a = TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (b, _) = l.accept().await.expect("accept");
        (a, b)
    }

    fn lowat(w: &Wire<TcpStream>) -> u32 {
        socket2::SockRef::from(w.get_ref())
            .tcp_notsent_lowat()
            .expect("getsockopt")
    }

    #[tokio::test]
    async fn the_low_mark_is_set_while_slicing_and_cleared_after() {
        let (a, _b) = pair().await;
        let (mut w, slicing) = Wire::new(a);
        w.write_all(b"x").await.expect("write");
        w.flush().await.expect("flush");
        assert_eq!(lowat(&w), 0, "not slicing yet");
        slicing.set(true);
        w.write_all(b"y").await.expect("write");
        w.flush().await.expect("flush");
        assert_eq!(lowat(&w), 1);
        slicing.set(false);
        w.flush().await.expect("flush");
        assert_eq!(lowat(&w), 0, "back to the system's default");
    }

    /// A peer that reads nothing fills its window; the flush stops waiting
    /// for bytes that cannot leave (no hang, no spin).
    #[tokio::test]
    async fn a_flush_gives_up_on_a_peer_that_reads_nothing() {
        let (a, _b) = pair().await;
        let chunk = vec![0u8; 64 * 1024];
        let mut queued = 0usize;
        loop {
            match a.try_write(&chunk) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        assert!(queued > 0);
        let (mut w, slicing) = Wire::new(a);
        slicing.set(true);
        let start = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(30), w.flush())
            .await
            .expect("the flush gives up")
            .expect("flush");
        assert!(start.elapsed() >= MAX_WAIT, "it waited first");
        assert_eq!(lowat(&w), 1);
    }
}
