//! One part of a partial upload being written: the socket side hands the
//! body's buffers to a blocking thread that hashes and appends them, so a
//! part of any size holds at most [`QUEUE`] buffers in memory.
//!
//! A part with a checksum is all or nothing: a mismatch, or a body that
//! ended early, truncates the file back to where the part began (the spec
//! of tus's `checksum` extension). A part without one keeps every byte
//! that arrived, so a cut connection resumes from the last byte written.
//!
//! Not here: which upload, whose, or the offset rules ([`super`]).

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::store::Sha256;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::PartialError;
use crate::store::StoreError;

/// Buffers queued between the socket and the writer.
const QUEUE: usize = 16;

/// A part's checksum, as `Upload-Checksum` (tus) declares it.
#[derive(Debug, Clone)]
pub enum Checksum {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

enum Msg {
    Data(Bytes),
    /// The body arrived whole: keep the part (if its checksum matches).
    End,
}

/// How a part ended: the upload's new offset and running hash, and
/// whether the part was kept.
pub struct Ended {
    pub offset: u64,
    pub hasher: Option<Sha256>,
    pub result: Result<(), PartialError>,
}

/// A part being written. Feed it with [`Patch::push`]; end it with
/// [`Patch::finish`] (or drop it: the bytes written so far stay, as for a
/// body that ended early).
pub struct Patch {
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<JoinHandle<Ended>>,
    room: u64,
    length: u64,
    start: u64,
}

impl Patch {
    pub(super) fn start(
        path: PathBuf,
        offset: u64,
        length: u64,
        hasher: Option<Sha256>,
        checksum: Option<Checksum>,
    ) -> Result<Patch, PartialError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(StoreError::from)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer =
            tokio::task::spawn_blocking(move || write_part(file, offset, hasher, checksum, rx));
        Ok(Patch {
            tx: Some(tx),
            writer: Some(writer),
            room: length - offset,
            length,
            start: offset,
        })
    }

    /// Bytes this part may still carry before the declared length.
    pub fn room(&self) -> u64 {
        self.room
    }

    /// Hands a buffer to the writer.
    ///
    /// # Errors
    /// It would pass the declared length (nothing of it is written); the
    /// writer stopped (its error comes with [`Patch::finish`]).
    pub async fn push(&mut self, bytes: Bytes) -> Result<(), PartialError> {
        let n = bytes.len() as u64;
        if n > self.room {
            return Err(PartialError::PastEnd {
                end: self.length - self.room + n,
                length: self.length,
            });
        }
        self.room -= n;
        let sent = match &self.tx {
            Some(tx) => tx.send(Msg::Data(bytes)).await.is_ok(),
            None => false,
        };
        if !sent {
            self.tx = None;
            return Err(PartialError::Body("the writer stopped".into()));
        }
        Ok(())
    }

    /// Ends the part: `whole` when the body arrived complete.
    pub async fn finish(mut self, whole: bool) -> Ended {
        if let Some(tx) = self.tx.take()
            && whole
        {
            let _ = tx.send(Msg::End).await;
        }
        let start = self.start;
        match self.writer.take() {
            Some(w) => w.await.unwrap_or_else(|e| Ended {
                offset: start,
                hasher: None,
                result: Err(StoreError::Io(io::Error::other(e.to_string())).into()),
            }),
            None => Ended {
                offset: start,
                hasher: None,
                result: Err(PartialError::Body("the writer stopped".into())),
            },
        }
    }
}

/// The writer thread: hashes what is already there if the running hash
/// was lost (a restart), then appends the part.
fn write_part(
    mut file: std::fs::File,
    start: u64,
    hasher: Option<Sha256>,
    checksum: Option<Checksum>,
    mut rx: mpsc::Receiver<Msg>,
) -> Ended {
    let fail = |offset, e: io::Error| Ended {
        offset,
        hasher: None,
        result: Err(StoreError::Io(e).into()),
    };
    let mut hasher = match hasher {
        Some(h) => h,
        None => match hash_prefix(&mut file, start) {
            Ok(h) => h,
            Err(e) => return fail(start, e),
        },
    };
    // Anything past the offset is a part that was never acknowledged.
    if let Err(e) = file
        .set_len(start)
        .and_then(|()| file.seek(SeekFrom::Start(start)).map(drop))
    {
        return fail(start, e);
    }
    let before = checksum.as_ref().map(|_| hasher.clone());
    let mut part = PartHash::new(checksum.as_ref());
    let mut offset = start;
    let mut whole = false;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Data(buf) => {
                if let Err(e) = file.write_all(&buf) {
                    // What reached the file before the error is unknown:
                    // back to the last known length, hash recomputed next time.
                    let _ = file.set_len(offset);
                    return fail(offset, e);
                }
                hasher.update(&buf);
                part.update(&buf);
                offset += buf.len() as u64;
            }
            Msg::End => {
                whole = true;
                break;
            }
        }
    }
    let result = match (checksum, whole) {
        (None, _) => Ok(()),
        (Some(sum), true) if part.matches(&sum) => Ok(()),
        (Some(_), whole) => {
            if let Err(e) = file.set_len(start) {
                return fail(start, e);
            }
            offset = start;
            hasher = before.expect("kept whenever a checksum is given");
            Err(if whole {
                PartialError::ChecksumMismatch
            } else {
                PartialError::Body("the part was cut short; its checksum cannot be checked".into())
            })
        }
    };
    if let Err(e) = file.sync_data() {
        return fail(start, e);
    }
    Ended {
        offset,
        hasher: Some(hasher),
        result,
    }
}

fn hash_prefix(file: &mut std::fs::File, len: u64) -> io::Result<Sha256> {
    let mut hasher = Sha256::new();
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    let mut buf = vec![0u8; crate::store::CHUNK];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the partial file is shorter than its offset",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher)
}

/// The part's own hash, for its checksum.
enum PartHash {
    None,
    Sha1(sha1::Sha1),
    Sha256(Sha256),
}

impl PartHash {
    fn new(sum: Option<&Checksum>) -> Self {
        match sum {
            None => PartHash::None,
            Some(Checksum::Sha1(_)) => PartHash::Sha1(sha1::Digest::new()),
            Some(Checksum::Sha256(_)) => PartHash::Sha256(Sha256::new()),
        }
    }
    fn update(&mut self, buf: &[u8]) {
        match self {
            PartHash::None => {}
            PartHash::Sha1(h) => sha1::Digest::update(h, buf),
            PartHash::Sha256(h) => h.update(buf),
        }
    }
    fn matches(self, sum: &Checksum) -> bool {
        match (self, sum) {
            (PartHash::Sha1(h), Checksum::Sha1(want)) => {
                sha1::Digest::finalize(h).as_slice() == want.as_slice()
            }
            (PartHash::Sha256(h), Checksum::Sha256(want)) => {
                h.finalize().as_slice() == want.as_slice()
            }
            _ => false,
        }
    }
}
