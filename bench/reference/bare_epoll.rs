//! The metal anchor: an upper-case echo server on epoll (through `mio`, a
//! thin wrapper: no runtime, no tasks, no wakers, no timers). One event
//! loop per thread, each polling its own handle on the one listening
//! socket; a connection lives on the thread that accepted it. Each thread
//! has one 16 KiB buffer for all its connections; a reply the peer's window
//! cannot take at once is copied out and sent when the socket is writable
//! (reading from that connection pauses meanwhile). No limits, no stats,
//! no timeouts.
//!
//!     cargo run --release --example bare-epoll -- 127.0.0.1:9114 [THREADS]
//!
//! THREADS defaults to the number of cores, as tokio's worker threads do.
//! A read shorter than the buffer ends a readable event without a second
//! read that would fail with `EAGAIN` (as tokio does): edge-triggered
//! epoll reports any byte that arrives after that read as a new event.

// Bare on purpose: none of switchboard's code, its bind helper included.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9114".into());
    let threads = match args.next() {
        Some(n) => n.parse().map_err(std::io::Error::other)?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let listener = std::net::TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    let mut handles = Vec::new();
    for _ in 1..threads {
        let mine = listener.try_clone()?;
        handles.push(std::thread::spawn(move || serve(mine)));
    }
    serve(listener)?;
    for h in handles {
        h.join()
            .map_err(|_| std::io::Error::other("a loop panicked"))??;
    }
    Ok(())
}

/// One connection: its socket and what it still owes the peer.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn serve(listener: std::net::TcpListener) -> std::io::Result<()> {
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in &events {
            if event.token() == LISTENER {
                accept(&listener, &poll, &mut conns, &mut next)?;
                continue;
            }
            let id = event.token().0;
            let Some(conn) = conns.get_mut(&id) else {
                continue;
            };
            let alive = if conn.pending.is_empty() {
                on_readable(conn, &mut buf, &poll, id)
            } else {
                on_writable(conn, &poll, id)
            };
            if !alive && let Some(mut gone) = conns.remove(&id) {
                let _ = poll.registry().deregister(&mut gone.stream);
            }
        }
    }
}

/// Accepts every waiting connection (another thread may take some first).
fn accept(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut HashMap<usize, Conn>,
    next: &mut usize,
) -> std::io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nodelay(true)?;
                *next += 1;
                poll.registry()
                    .register(&mut stream, Token(*next), Interest::READABLE)?;
                conns.insert(
                    *next,
                    Conn {
                        stream,
                        pending: Vec::new(),
                    },
                );
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Out of file descriptors and the like: drop this one, go on.
            Err(_) => return Ok(()),
        }
    }
}

/// Reads, upper-cases and answers until the socket is drained; false when
/// the connection is over.
fn on_readable(conn: &mut Conn, buf: &mut [u8], poll: &Poll, id: usize) -> bool {
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        buf[..n].make_ascii_uppercase();
        let mut sent = 0;
        while sent < n {
            match conn.stream.write(&buf[sent..n]) {
                Ok(0) => return false,
                Ok(k) => sent += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.pending.extend_from_slice(&buf[sent..n]);
                    let interest = Interest::WRITABLE;
                    return poll
                        .registry()
                        .reregister(&mut conn.stream, Token(id), interest)
                        .is_ok();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if n < buf.len() {
            return true;
        }
    }
}

/// Sends what the peer's window could not take; reads again once it is out.
fn on_writable(conn: &mut Conn, poll: &Poll, id: usize) -> bool {
    while !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(0) => return false,
            Ok(k) => {
                conn.pending.drain(..k);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.pending = Vec::new();
    poll.registry()
        .reregister(&mut conn.stream, Token(id), Interest::READABLE)
        .is_ok()
}
