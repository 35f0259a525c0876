//! The arguments of `switchboard user`, `token` and `key`: the accounts,
//! API tokens and HMAC key kept in the data dir.

use super::*;

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,

    #[command(flatten)]
    pub config: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add an account (the first one must be `admin`).
    Add {
        name: String,
        /// viewer (sees), operator (also sends and uploads) or admin (also
        /// starts/stops services and runs commands).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Generate a password and print it instead of asking for one.
        #[arg(long)]
        generate: bool,
    },
    /// Set a new password.
    Passwd {
        name: String,
        /// Generate a password and print it instead of asking for one.
        #[arg(long)]
        generate: bool,
    },
    /// Change an account's role.
    Role { name: String, role: String },
    /// Remove an account (not the last admin).
    Del { name: String },
    /// List the accounts.
    List,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,

    #[command(flatten)]
    pub config: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token and print it (the only time it is shown).
    Create {
        /// 1 to 32 of a-z, 0-9 and `-`.
        name: String,
        /// viewer (sees), operator (also sends and uploads) or admin (also
        /// starts/stops services and runs commands).
        #[arg(long)]
        role: String,
        /// How long it works: `30d`, `12h` or `90m` (at most 3650d).
        /// Without it, until revoked.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List the tokens: name, role, created, expires, last used.
    List,
    /// Revoke a token: it stops working at once.
    Revoke { name: String },
}

/// Where an authenticating client finds the HMAC key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// File holding the HMAC key (as the server's `<data_dir>/key`).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Without --key-file or SWITCHBOARD_KEY, the key is found as the server
    /// finds it: the config's `key`, else `<data_dir>/key` (`--data-dir`,
    /// `SWITCHBOARD_DATA_DIR`, `--set data_dir=`, the config file).
    #[command(flatten)]
    pub config: ServeArgs,
}
