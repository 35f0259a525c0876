//! A stream that counts every byte read from and written to it on its
//! connection's stats: wrapped right around the socket, so what the
//! dashboard shows for exec and files is what crossed the wire — the
//! challenge, the handshake, every header and body — not only payload.
//! A captured connection's reads and writes are recorded here too, each
//! call one segment, as the wire inspector shows them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stats::ByteCounter;

/// `S`, counted.
pub struct Counted<S> {
    inner: S,
    counter: ByteCounter,
}

impl<S> Counted<S> {
    pub fn new(inner: S, counter: ByteCounter) -> Self {
        Counted { inner, counter }
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                self.counter.received(read);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.counter.sent(&buf[..*n]);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            if self.counter.capturing() {
                // One write, one segment, however many slices it took.
                let mut wrote = Vec::with_capacity(*n);
                for b in bufs {
                    let take = (*n - wrote.len()).min(b.len());
                    wrote.extend_from_slice(&b[..take]);
                }
                self.counter.sent(&wrote);
            } else {
                self.counter.add_out(*n);
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
