//! `tcp-proxy`'s fast path on Linux: bytes move socket → pipe → socket with
//! `splice(2)`, never through user space.
//!
//! Each direction owns one pipe (created non-blocking, closed on drop) and
//! counts what it moves, so byte counts and the idle clock stay exact. The
//! one trap is readiness: a pipe can be full with fewer bytes in it than
//! asked for (it has a slot per page fragment, not per byte), and then a
//! splice from the socket says `EAGAIN` although the socket has data. So
//! the socket's readiness is cleared (and waited for) only when the pipe is
//! empty, where `EAGAIN` can only be the socket's; with bytes in the pipe,
//! we drain it first and try again. Plain TCP only: TLS needs the bytes in
//! user space, and other pairs take the copying path.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{OFlag, SpliceFFlags, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Most bytes asked of one splice: the default pipe's 16 pages.
const CHUNK: usize = 64 * 1024;

/// A non-blocking pipe; both ends close when it is dropped.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// # Errors
    /// Out of file descriptors, typically: the caller copies instead.
    pub(crate) fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        Ok(Pipe { read, write })
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK
}

/// Moves everything `src` sends to `dst` until `src` ends, then shuts down
/// `dst`'s write half (the other direction goes on). `on_read(n)` is told
/// of each `n` bytes taken from `src`, `on_write(n)` of each given to `dst`.
///
/// # Errors
/// Either socket's error.
pub(crate) async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: Pipe,
    mut on_read: impl FnMut(usize),
    mut on_write: impl FnMut(usize),
) -> io::Result<()> {
    let mut in_pipe = 0usize;
    let mut eof = false;
    loop {
        // A full pipe takes no more (and a splice of 0 bytes would read
        // as the end of `src`).
        if !eof && in_pipe < CHUNK {
            let read = if in_pipe == 0 {
                // EAGAIN here is the socket's: clear its readiness and wait.
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
                        src.readable().await?;
                        continue;
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
                    CHUNK - in_pipe,
                    flags(),
                ) {
                    Err(nix::errno::Errno::EAGAIN) => None,
                    other => Some(other.map_err(io::Error::from)),
                }
            };
            match read {
                Some(Ok(0)) => eof = true,
                Some(Ok(n)) => {
                    in_pipe += n;
                    on_read(n);
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if in_pipe > 0 {
            let drain = || {
                Ok(splice(
                    pipe.read.as_fd(),
                    None,
                    dst.as_fd(),
                    None,
                    in_pipe,
                    flags(),
                )?)
            };
            match dst.try_io(Interest::WRITABLE, drain) {
                Ok(n) => {
                    in_pipe -= n;
                    on_write(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        } else if eof {
            socket2::SockRef::from(dst).shutdown(Shutdown::Write)?;
            return Ok(());
        }
    }
}
