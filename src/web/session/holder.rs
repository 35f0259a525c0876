//! Who holds a WebSocket: a session or an API token, for the relay's
//! per-person limits and to end it when its holder may no longer go on.
//!
//! Not here: the relay itself ([`crate::web::ws`]).

use super::*;

/// Who holds a WebSocket, for its limits and its end: a session (its key,
/// and the signal that fires when it leaves the table) or an API token.
pub struct Holder {
    /// What its limits are counted under: the session's key, or the
    /// token's digest.
    pub key: [u8; 32],
    /// Fires when the session ends; a token's holder is checked instead.
    pub ended: CancellationToken,
    who: Who,
}

enum Who {
    Session { user: String },
    Token(String),
}

impl Holder {
    /// What per-person limits count under: the account's name for a
    /// session (however many sessions it signs in), the token for a token.
    pub fn owner_key(&self) -> [u8; 32] {
        use sha2::Digest;
        match &self.who {
            Who::Session { user } => sha2::Sha256::new()
                .chain_update(b"user\0")
                .chain_update(user.as_bytes())
                .finalize()
                .into(),
            Who::Token(_) => self.key,
        }
    }
}

impl AppState {
    /// The holder of a request already let through by a role extractor.
    ///
    /// # Errors
    /// No session (it ended in between).
    pub(in crate::web) fn holder(&self, headers: &HeaderMap) -> Result<Holder, WebError> {
        if let Some(token) = bearer(headers) {
            return Ok(Holder {
                key: token_key(token),
                ended: CancellationToken::new(),
                who: Who::Token(token.to_owned()),
            });
        }
        let token = cookie_token(headers).ok_or(WebError::SignInRequired)?;
        let key = token_key(token);
        let table = self.sessions().lock();
        let entry = table.get(&key).ok_or(WebError::SignInRequired)?;
        Ok(Holder {
            key,
            ended: entry.ended.clone(),
            who: Who::Session {
                user: entry.session.user.clone(),
            },
        })
    }

    /// Whether the holder may go on with `need`: a session still live
    /// whose account still has the role (as [`Self::stream_allowed`]), or
    /// a token still valid with it.
    pub(in crate::web) fn holder_allowed(&self, holder: &Holder, need: Role) -> bool {
        match &holder.who {
            Who::Session { user } => {
                if !self.sessions().still_live(&holder.key) {
                    return false;
                }
                match self.users().role(user) {
                    Some(role) => role >= need,
                    None => {
                        self.sessions().lock().remove(&holder.key);
                        false
                    }
                }
            }
            Who::Token(token) => {
                matches!(self.tokens().check(token).0, Verdict::Valid { role, .. } if role >= need)
            }
        }
    }
}
