//! Read a captured conversation back: a pcap or pcapng file (our own
//! exports, tcpdump's, tshark's) becomes a [`Conversation`], the one TCP
//! stream or UDP flow in it with each side's bytes in order.
//!
//! `read.rs` walks the file's blocks, `packet.rs` decodes each frame's
//! headers, `conversation.rs` picks the stream and puts each side in order;
//! `diff.rs` compares a recorded server side with new replies.
//!
//! Not done: IP fragment reassembly.

mod conversation;
pub mod diff;
mod packet;
mod read;
#[cfg(test)]
mod tests;

pub use conversation::{
    Conversation, Dir, MAX_STREAMS, ReadOptions, Segment, StreamInfo, conversation, streams,
};
pub use diff::Diff;
pub use packet::Proto;
pub use read::ReadError;

/// Reads a capture file, at most `options.max_file_bytes` of it, and the
/// conversation in it.
///
/// # Errors
/// [`ReadError`]: the file cannot be read, is too large, or holds no
/// single stream to replay.
pub fn read_file(path: &std::path::Path, options: &ReadOptions) -> Result<Conversation, ReadError> {
    use std::io::Read;
    let io = |e: std::io::Error| ReadError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > options.max_file_bytes {
        return Err(ReadError::TooLarge {
            len,
            max: options.max_file_bytes,
        });
    }
    // The size can change between the check and the read (a capture
    // still being written): read one byte past the limit to notice.
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(options.max_file_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > options.max_file_bytes {
        return Err(ReadError::TooLarge {
            len: data.len() as u64,
            max: options.max_file_bytes,
        });
    }
    conversation(&data, options)
}
