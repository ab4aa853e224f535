//! What can go wrong creating or opening an account.
use std::path::PathBuf;

use thiserror::Error;

use crate::db::DbError;

/// An account error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The data directory could not be created or secured.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `create` was called on a directory that already holds an account.
    #[error("{0} already holds an account")]
    AlreadyExists(PathBuf),
    /// `open` was called on a directory without an account.
    #[error("no account in {0}")]
    NotFound(PathBuf),
    /// The account database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The device certificate could not be issued (an unusable relay domain).
    #[error("cannot issue the device certificate: {0}")]
    Certificate(#[from] kith_crypto::certificate::CertificateError),
}
