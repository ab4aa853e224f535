//! Error types of the relay library, one enum per area.
use std::path::PathBuf;

/// Reading or checking the configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this config (unknown field, wrong type, ...).
    #[error("cannot parse config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("config field {field}: {reason}")]
    Invalid {
        /// The field, dotted (`limits.max_recipients`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The message store failed or refused an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Creating the data directory or checking its disk failed.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not commit (shutting down, disk full or failing); nothing was stored.
    #[error("the store is unavailable; nothing was stored")]
    Unavailable,
    /// A recipient has no mailbox on this relay.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The message is larger than the mailbox quota, so trimming cannot make room.
    #[error("message of {size} bytes exceeds the mailbox quota of {quota} bytes")]
    LargerThanQuota {
        /// Message size in bytes.
        size: u64,
        /// Quota in bytes.
        quota: u64,
    },
}

/// The relay could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listening socket could not be bound.
    #[error("cannot listen for {listener} on {address}: {source}")]
    Bind {
        /// Which listener (`submissions`, `smtp`, `metrics`, ...).
        listener: &'static str,
        /// The configured address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
