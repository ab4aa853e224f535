//! What can go wrong with the account database.
use thiserror::Error;

/// An account database error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed (I/O, corruption, a constraint, a busy lock that did not clear).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// SQLite refused a setting the account relies on.
    #[error("the database refused PRAGMA {0}")]
    Pragma(&'static str),
    /// The file was written by a newer Kith whose schema this version does not know.
    #[error("database schema version {found} is newer than this Kith knows ({known})")]
    NewerSchema {
        /// The file's `user_version`.
        found: i64,
        /// The highest version this code migrates to.
        known: i64,
    },
    /// openmls's storage migrations failed.
    #[error("openmls storage migration: {0}")]
    MlsMigration(#[source] kith_crypto::mls::MlsSetupError),
    /// A stored value does not decode (a damaged or hand-edited database).
    #[error("stored {what} is malformed: {reason}")]
    Malformed {
        /// Which value.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// The account has not been created in this database.
    #[error("no account in this database")]
    NoAccount,
}
