//! `tcp-proxy`'s relay between two plain TCP sockets on Linux: small reads
//! go through a small buffer, bulk goes socket → pipe → socket with
//! `splice(2)`, never through user space.
//!
//! A direction holds nothing while it waits: no pipe, no buffer. When its
//! source becomes readable it moves a *burst* (until the source has no
//! more, a short read or `EAGAIN` says, and all that was read has been
//! written), then gives back what it borrowed and waits again. So an idle
//! connection costs its two sockets and nothing more.
//!
//! A direction starts by copying: one read into a [`SMALL`]-byte buffer
//! and a write, which for a request of a few bytes is two syscalls against
//! splice's four (in, out, and the `EAGAIN`s that end a burst). A read
//! that fills the buffer means bulk: the direction switches to splice,
//! borrowing an empty pipe from a small per-thread [`pool`] (or creating
//! one), and stays on splice for later bursts while they bring reads of
//! [`SMALL`] or more. A pipe that cannot be had (out of file descriptors)
//! leaves the direction copying; the connection goes on.
//!
//! The one trap of splice is readiness: a pipe can be full with fewer bytes
//! in it than asked for (it has a slot per page fragment, not per byte),
//! and then a splice from the socket says `EAGAIN` although the socket has
//! data. So the socket's readiness is cleared (and the burst ends) only
//! when the pipe is empty, where `EAGAIN` can only be the socket's; with
//! bytes in the pipe, we drain it first and try again. That is also why a
//! pipe is given back only empty: it ends a burst, and an empty pipe is
//! all a later borrower may assume. Plain TCP only: TLS needs the bytes in
//! user space, and other pairs take the copying path.
//!
//! Each direction counts what it moves, so byte counts and the idle clock
//! stay exact on either path.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use nix::fcntl::{OFlag, SpliceFFlags, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::wake::{Slot, Stored};

/// Most bytes asked of one splice: the default pipe's 16 pages.
const CHUNK: usize = 64 * 1024;

/// The copying buffer's size (one buffer per worker thread). A read
/// that fills it is what switches a direction to splice, and a splice
/// burst whose biggest read is below it switches back.
pub(crate) const SMALL: usize = 16 * 1024;

/// Most empty pipes a thread keeps for the next burst. A runtime has a
/// worker thread per core, so the pool holds at most a few dozen fds in
/// all, against a `pipe2` + two `close` per bulk burst without it.
const POOL: usize = 8;

/// A non-blocking pipe; both ends close when it is dropped.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// # Errors
    /// Out of file descriptors, typically: the caller copies instead.
    fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        Ok(Pipe { read, write })
    }
}

/// Empty pipes kept per worker thread; see [`Lease`].
pub(crate) mod pool {
    use super::{Pipe, RefCell};

    thread_local! {
        static FREE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty pipe from this thread's pool, if it has one.
    pub(super) fn take() -> Option<Pipe> {
        FREE.with(|f| f.borrow_mut().pop())
    }

    /// Keeps `pipe` (which must be empty) unless the pool is full.
    pub(super) fn give(pipe: Pipe) {
        FREE.with(|f| {
            let mut free = f.borrow_mut();
            if free.len() < super::POOL {
                free.push(pipe);
            }
        });
    }

    /// How many pipes this thread keeps (for tests).
    #[cfg(test)]
    pub(super) fn len() -> usize {
        FREE.with(|f| f.borrow().len())
    }
}

/// A pipe borrowed for one burst, with what is in it. Dropped empty, it
/// goes back to the pool; dropped with bytes in it (an error, the idle
/// timeout), it is closed, so the pool only ever holds empty pipes.
struct Lease {
    pipe: Option<Pipe>,
    in_pipe: usize,
}

impl Lease {
    /// # Errors
    /// `pipe2`'s, typically out of file descriptors.
    fn borrow() -> io::Result<Lease> {
        let pipe = match pool::take() {
            Some(pipe) => pipe,
            None => Pipe::new()?,
        };
        Ok(Lease {
            pipe: Some(pipe),
            in_pipe: 0,
        })
    }

    fn pipe(&self) -> &Pipe {
        self.pipe
            .as_ref()
            .expect("a lease holds its pipe until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take()
            && self.in_pipe == 0
        {
            pool::give(pipe);
        }
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK
}

/// Tells one splicing direction to stop at its next moment between
/// bursts (a toxic was added). Its wait checks a flag and keeps its waker
/// in a [`Slot`], stored (under the slot's lock) once for the connection's
/// task, so a direction's wake-up costs what the bare readiness wait
/// costs; a `CancellationToken` took two mutexes per wake-up (its tree
/// node's and its `Notify`'s).
#[derive(Default)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    waker: Slot,
}

impl Stop {
    /// Stops the direction: at once if it is waiting, else after its
    /// burst.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// Waits until `src` is readable (`Ok(true)`) or `stop` is stopped
/// (`Ok(false)`), stop first.
async fn readable_unless(src: &TcpStream, stop: &Stop, stored: &mut Stored) -> io::Result<bool> {
    std::future::poll_fn(|cx| {
        if stop.is_stopped() {
            return Poll::Ready(Ok(false));
        }
        stop.waker.register(stored, cx.waker());
        // A stop between the check and the registration woke no one.
        if stop.is_stopped() {
            return Poll::Ready(Ok(false));
        }
        src.poll_read_ready(cx).map_ok(|()| true)
    })
    .await
}

/// How a burst ended.
enum Burst {
    /// `src` had no more for now; `big` if a read brought [`SMALL`] or more.
    Drained { big: bool },
    /// The copy buffer came back full: more is there, splice it.
    Bulk,
    /// `src` ended, and everything it sent was written.
    Eof,
}

/// Moves everything `src` sends to `dst` until `src` ends, then shuts down
/// `dst`'s write half (the other direction goes on), and says `true`.
/// `on_read(n)` is told of each `n` bytes taken from `src`, `on_write(n)`
/// of each given to `dst`. Once `stop` is stopped it returns `false` at
/// the next moment it holds nothing (between bursts), so the caller can go
/// on copying with no byte lost (a toxic was added: [`crate::toxic`]).
///
/// # Errors
/// Either socket's error.
pub(crate) async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    mut on_read: impl FnMut(usize),
    mut on_write: impl FnMut(usize),
    stop: &Stop,
) -> io::Result<bool> {
    let mut bulk = false;
    let mut stored = Stored::default();
    loop {
        // Nothing is held across this wait.
        if !readable_unless(src, stop, &mut stored).await? {
            return Ok(false);
        }
        // A burst's future is boxed for the burst only: inline, its state
        // would be part of every idle connection's task for its life.
        let burst = if bulk {
            match Lease::borrow() {
                Ok(mut lease) => {
                    let burst = spliced(src, dst, &mut lease, &mut on_read, &mut on_write, stop);
                    Box::pin(burst).await?
                }
                Err(e) => {
                    tracing::debug!("no pipe for a bulk burst, copying: {e}");
                    copy_burst(src, dst, &mut on_read, &mut on_write).await?
                }
            }
        } else {
            copy_burst(src, dst, &mut on_read, &mut on_write).await?
        };
        match burst {
            Burst::Drained { big } => bulk = big,
            Burst::Bulk => bulk = true,
            Burst::Eof => {
                socket2::SockRef::from(dst).shutdown(Shutdown::Write)?;
                return Ok(true);
            }
        }
    }
}

thread_local! {
    /// The copying buffer, one per worker thread: a direction borrows it
    /// only between a readiness wake-up and the write that follows, never
    /// across an await (what the peer's window does not take at once is
    /// copied out first).
    static COPY_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SMALL]);
}

/// What [`copy_now`] did.
enum Copied {
    /// The burst is over, as said (everything read was written).
    Done(Burst),
    /// Bytes `dst` did not take at once, to be written before the burst
    /// (the second field) is over.
    Rest(Vec<u8>, Burst),
}

/// A copying burst: most small requests are moved by [`copy_now`] with no
/// await; only what `dst` cannot take at once waits, in a boxed future.
async fn copy_burst(
    src: &TcpStream,
    dst: &TcpStream,
    on_read: &mut impl FnMut(usize),
    on_write: &mut impl FnMut(usize),
) -> io::Result<Burst> {
    match copy_now(src, dst, on_read, on_write)? {
        Copied::Done(burst) => Ok(burst),
        Copied::Rest(rest, burst) => {
            Box::pin(write_rest(dst, &rest, on_write)).await?;
            Ok(burst)
        }
    }
}

/// The copying path, a [`SMALL`]-byte read through the thread's buffer and
/// a write of what `dst` takes now, with no await and no allocation unless
/// `dst` is full (see [`copied`]).
fn copy_now(
    src: &TcpStream,
    dst: &TcpStream,
    on_read: &mut impl FnMut(usize),
    on_write: &mut impl FnMut(usize),
) -> io::Result<Copied> {
    COPY_BUF.with_borrow_mut(|buf| copied(src, dst, buf, on_read, on_write))
}

/// One read through `buf` (a full one says bulk: [`Burst::Bulk`],
/// readiness kept; a shorter one means the socket had no more, and then its
/// readiness is cleared as of before the read, as tokio's own `poll_read`
/// does, so the next wait costs no `EAGAIN` read; a byte that came
/// meanwhile raised a newer readiness, which stays), and a write of what
/// `dst` takes now. The rest is returned, copied out of `buf`.
fn copied(
    src: &TcpStream,
    dst: &TcpStream,
    buf: &mut [u8],
    on_read: &mut impl FnMut(usize),
    on_write: &mut impl FnMut(usize),
) -> io::Result<Copied> {
    let full = buf.len();
    let mut short = 0;
    let read = src.try_io(Interest::READABLE, || {
        let n = src.try_read(buf)?;
        if n > 0 && n < full {
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    let n = match read {
        Ok(0) => return Ok(Copied::Done(Burst::Eof)),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => short,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            return Ok(Copied::Done(Burst::Drained { big: false }));
        }
        Err(e) => return Err(e),
    };
    on_read(n);
    let burst = if n == full {
        Burst::Bulk
    } else {
        Burst::Drained { big: false }
    };
    let mut at = 0;
    while at < n {
        match dst.try_write(&buf[at..n]) {
            Ok(w) => {
                at += w;
                on_write(w);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Copied::Rest(buf[at..n].to_vec(), burst));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Copied::Done(burst))
}

/// Writes what `dst` did not take at once, waiting for it to.
async fn write_rest(
    dst: &TcpStream,
    rest: &[u8],
    on_write: &mut impl FnMut(usize),
) -> io::Result<()> {
    let mut at = 0;
    while at < rest.len() {
        match dst.try_write(&rest[at..]) {
            Ok(w) => {
                at += w;
                on_write(w);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One burst through `lease`'s pipe; see the module doc for when the
/// socket's readiness may be cleared. A burst can last as long as the
/// source never runs dry (a fast upstream, a reader keeping up), so it
/// also ends, early and holding nothing, when `stop` is stopped.
async fn spliced(
    src: &TcpStream,
    dst: &TcpStream,
    lease: &mut Lease,
    on_read: &mut impl FnMut(usize),
    on_write: &mut impl FnMut(usize),
    stop: &Stop,
) -> io::Result<Burst> {
    let mut biggest = 0;
    let mut eof = false;
    loop {
        if lease.in_pipe == 0 && !eof && stop.is_stopped() {
            // The source's readiness is kept: the copying path reads on.
            return Ok(Burst::Drained {
                big: biggest >= SMALL,
            });
        }
        // A full pipe takes no more (and a splice of 0 bytes would read
        // as the end of `src`).
        if !eof && lease.in_pipe < CHUNK {
            let pipe = lease.pipe();
            let read = if lease.in_pipe == 0 {
                // EAGAIN here is the socket's: clear its readiness, and
                // the burst is over.
                let fill = || {
                    Ok(splice(
                        src.as_fd(),
                        None,
                        pipe.write.as_fd(),
                        None,
                        CHUNK,
                        flags(),
                    )?)
                };
                match src.try_io(Interest::READABLE, fill) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Burst::Drained {
                            big: biggest >= SMALL,
                        });
                    }
                    other => Some(other),
                }
            } else {
                // EAGAIN may be the pipe's: keep the readiness, drain first.
                match splice(
                    src.as_fd(),
                    None,
                    pipe.write.as_fd(),
                    None,
                    CHUNK - lease.in_pipe,
                    flags(),
                ) {
                    Err(nix::errno::Errno::EAGAIN) => None,
                    other => Some(other.map_err(io::Error::from)),
                }
            };
            match read {
                Some(Ok(0)) => eof = true,
                Some(Ok(n)) => {
                    lease.in_pipe += n;
                    biggest = biggest.max(n);
                    on_read(n);
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if lease.in_pipe > 0 {
            let pipe = lease.pipe();
            let drain = || {
                Ok(splice(
                    pipe.read.as_fd(),
                    None,
                    dst.as_fd(),
                    None,
                    lease.in_pipe,
                    flags(),
                )?)
            };
            match dst.try_io(Interest::WRITABLE, drain) {
                Ok(n) => {
                    lease.in_pipe -= n;
                    on_write(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        } else if eof {
            return Ok(Burst::Eof);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_direction_waiting_for_bytes_is_small() {
        let listener =
            super::super::listen::bind_inet(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (b, _) = listener.accept().await.unwrap();
        let stop = Stop::default();
        let waiting = one_way(&a, &b, |_| {}, |_| {}, &stop);
        // What every idle proxied connection holds twice in its task:
        // the wait for readability, not a burst's buffers or state.
        let size = std::mem::size_of_val(&waiting);
        eprintln!("one_way's future: {size} bytes");
        assert!(size <= 384, "one_way's future is {size} bytes");
    }

    #[test]
    fn only_an_empty_lease_goes_back_to_the_pool() {
        while pool::take().is_some() {}
        let lease = Lease::borrow().expect("a pipe");
        drop(lease);
        assert_eq!(pool::len(), 1, "an empty pipe is kept");
        let mut lease = Lease::borrow().expect("a pipe");
        assert_eq!(pool::len(), 0, "and borrowed again");
        lease.in_pipe = 1;
        drop(lease);
        assert_eq!(pool::len(), 0, "a pipe with bytes in it is closed");
        let leases: Vec<_> = (0..POOL + 2)
            .map(|_| Lease::borrow().expect("a pipe"))
            .collect();
        drop(leases);
        assert_eq!(pool::len(), POOL, "the pool is bounded");
    }
}
