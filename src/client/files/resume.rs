//! The resumable `put` of the files protocol, client side: ask the server
//! how much of the file it holds (starting a partial upload if none is
//! named), then send the rest. The SHA-256 is computed over the whole
//! local file (what the server already holds is read back from disk here
//! and hashed) and compared with the server's. Not here: remembering the
//! partial id between runs (`switchboard put --resume` does).

use std::io::SeekFrom;

use crate::store::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt};

use super::super::{ClientError, deadline};
use super::{FilesClient, Stored};
use crate::client::exec::conn_error;
use crate::store::CHUNK;
use crate::wire::files::{FilesRequest, PutReply, ResumeReply};
use crate::wire::hex;

impl FilesClient {
    /// Uploads `file` (`size` bytes) as `name`, resumably: continues the
    /// partial upload `partial` when given (from what the server holds),
    /// else starts one. `on_partial` hears the partial's id and the offset
    /// the server holds before any byte is sent, so a caller can keep the
    /// id for the next attempt.
    ///
    /// # Errors
    /// As [`FilesClient::put`]; [`ClientError::Rejected`] for an unknown
    /// or expired partial.
    pub async fn put_resumable(
        &mut self,
        name: &str,
        size: u64,
        mut file: impl AsyncRead + AsyncSeek + Unpin,
        partial: Option<String>,
        on_partial: impl FnOnce(&str, u64),
        mut progress: impl FnMut(u64),
    ) -> Result<Stored, ClientError> {
        let local = |source| ClientError::Local {
            path: name.to_owned(),
            source,
        };
        let addr = self.addr.clone();
        let ask = FilesRequest::Put {
            name: name.to_owned(),
            total: Some(size),
            partial,
            offset: None,
        };
        self.conn
            .write_message(&ask, &[])
            .await
            .map_err(|e| conn_error(&addr, e))?;
        let (held, _) = self.reply::<ResumeReply>().await?;
        if held.total != size || held.offset > size {
            return Err(self.protocol(format!(
                "the server holds {} of {} bytes for a {size}-byte file",
                held.offset, held.total
            )));
        }
        on_partial(&held.partial, held.offset);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        file.seek(SeekFrom::Start(0)).await.map_err(local)?;
        let mut read = 0u64;
        while read < size {
            let want = (size - read).min(CHUNK as u64) as usize;
            let n = file.read(&mut buf[..want]).await.map_err(local)?;
            if n == 0 {
                return Err(local(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("ended after {read} of {size} bytes"),
                )));
            }
            hasher.update(&buf[..n]);
            let start = read;
            read += n as u64;
            if read <= held.offset {
                continue;
            }
            if start <= held.offset {
                let request = FilesRequest::Put {
                    name: name.to_owned(),
                    total: Some(size),
                    partial: Some(held.partial.clone()),
                    offset: Some(held.offset),
                };
                self.conn
                    .write_header(&request, size - held.offset)
                    .await
                    .map_err(|e| conn_error(&addr, e))?;
            }
            let skip = usize::try_from(held.offset.saturating_sub(start)).unwrap_or(0);
            let wrote = deadline(&addr, self.timeout, async {
                self.conn
                    .write_body(&buf[skip..n])
                    .await
                    .map_err(|e| ClientError::io(&addr, e))
            })
            .await;
            if let Err(e) = wrote {
                return Err(match self.reply::<PutReply>().await {
                    Err(refusal @ ClientError::Rejected { .. }) => refusal,
                    _ => e,
                });
            }
            progress(read);
        }
        if held.offset == size {
            // Everything was there already: an empty part completes it.
            let request = FilesRequest::Put {
                name: name.to_owned(),
                total: Some(size),
                partial: Some(held.partial.clone()),
                offset: Some(size),
            };
            self.conn
                .write_message(&request, &[])
                .await
                .map_err(|e| conn_error(&addr, e))?;
        }
        self.conn
            .flush()
            .await
            .map_err(|e| ClientError::io(&addr, e))?;
        let (reply, _) = self.reply::<PutReply>().await?;
        checked(reply, &hex(&hasher.finalize()), size)
    }
}

/// The server's reply, if its hash and size are the local file's.
fn checked(reply: PutReply, ours: &str, size: u64) -> Result<Stored, ClientError> {
    if reply.sha256 != ours || reply.stored_size != size {
        return Err(ClientError::Integrity {
            name: reply.name,
            ours: ours.to_owned(),
            theirs: reply.sha256,
        });
    }
    Ok(Stored {
        name: reply.name,
        size: reply.stored_size,
        sha256: reply.sha256,
    })
}
