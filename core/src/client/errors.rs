//! What can go wrong in the client.
use thiserror::Error;

/// A client error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The account database failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// SQLite failed on one of the client's own statements.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The group engine refused or failed.
    #[error("group: {0}")]
    Group(#[from] crate::group::GroupError),
    /// An envelope could not be sealed or opened.
    #[error("envelope: {0}")]
    Envelope(#[from] kith_crypto::envelope::EnvelopeError),
    /// A key bundle did not decode.
    #[error("bundle: {0}")]
    Bundle(#[from] super::bundle::BundleError),
    /// An invite, join or contact command failed.
    #[error(transparent)]
    Contact(#[from] crate::contacts::ContactError),
    /// A frame must go to a device whose envelope key we never learned.
    #[error("no envelope key known for a recipient device")]
    UnknownDevice,
    /// A stored value does not decode (a damaged database).
    #[error("stored {what} is malformed")]
    Malformed {
        /// Which value.
        what: &'static str,
    },
    /// A file is larger than [`super::MAX_FILE_LEN`].
    #[error("the file has {len} bytes; at most {max} can be sent")]
    FileTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No shown message of the chat has this id.
    #[error("no message {id} in this chat")]
    UnknownMessage {
        /// The id given.
        id: String,
    },
    /// Only a message's sender may edit or delete it.
    #[error("message {id} was sent by someone else; only its sender may change it")]
    NotOwnMessage {
        /// The id given.
        id: String,
    },
}
