//! What the fuzz targets share: an input cut into the reads a socket might
//! deliver, so each target can check that a decoder fed piece by piece
//! reaches the same verdict as one fed everything at once.
//!
//! Input layout (what `arbitrary` derives): a list of cut offsets, each
//! announced by an odd byte and given as a little-endian `u16`, an even
//! byte to end the list, then the data, verbatim. So a seed file is `\0`
//! followed by the raw bytes a peer would send, and dictionary tokens land
//! in the data as they are.

use arbitrary::Arbitrary;

/// Bytes as a peer sends them, and where the reads split them.
#[derive(Debug, Arbitrary)]
pub struct Chunked<'a> {
    pub cuts: Vec<u16>,
    pub data: &'a [u8],
}

impl<'a> Chunked<'a> {
    /// The reads: `data` cut at every offset in `cuts` (taken modulo its
    /// length, in order), with no empty read, since a read of 0 bytes is the
    /// end of the stream.
    pub fn reads(&self) -> Vec<&'a [u8]> {
        split(self.data, &self.cuts)
    }
}

/// `data` cut at `cuts` (modulo its length, sorted), empty pieces dropped.
pub fn split<'a>(data: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (data.len() + 1))
        .collect();
    at.sort_unstable();
    at.push(data.len());
    let mut from = 0;
    let mut out = Vec::with_capacity(at.len());
    for to in at {
        if to > from {
            out.push(&data[from..to]);
        }
        from = to;
    }
    out
}

/// A stream of reads that can be consumed a bounded amount at a time, as
/// `read(&mut buf[..room])` consumes a socket's pending bytes.
pub struct Reads<'a> {
    pending: std::collections::VecDeque<&'a [u8]>,
}

impl<'a> Reads<'a> {
    pub fn new(reads: Vec<&'a [u8]>) -> Self {
        Reads {
            pending: reads.into(),
        }
    }

    /// The next read of at most `room` bytes: `None` at the end of the
    /// stream or with no room (a read into nothing returns 0 as well). What
    /// does not fit stays for the next call, as in a socket.
    pub fn read(&mut self, room: usize) -> Option<&'a [u8]> {
        if room == 0 {
            return None;
        }
        let front = self.pending.pop_front()?;
        let n = room.min(front.len());
        if n < front.len() {
            self.pending.push_front(&front[n..]);
        }
        Some(&front[..n])
    }
}
