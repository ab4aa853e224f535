//! Errors of the group engine.
use thiserror::Error;

/// What can go wrong in a group operation or while handling an incoming frame.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// A leaf's device certificate does not verify, does not name the leaf's key, or is not
    /// signed by the identity key we know for that contact.
    #[error("a device certificate does not verify or does not belong to the expected identity")]
    CertificateMismatch(#[source] kith_crypto::certificate::CertificateError),
    /// The group is not one this device is a member of.
    #[error("unknown group")]
    UnknownGroup,
    /// No member of the group has the given delivery address.
    #[error("no member of the group has that address")]
    UnknownMember,
    /// Bytes that should be an MLS message, KeyPackage or Welcome do not parse.
    #[error("malformed MLS message: {0}")]
    MalformedMls(String),
    /// openmls refused an operation (the reason is in the message).
    #[error("MLS operation failed: {0}")]
    Mls(String),
    /// Reading or writing the engine's tables failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// SQLite rolled the call's transaction back after an error met inside openmls's storage
    /// (an interrupt, a full disk, an I/O error): nothing of the call is kept, and it must
    /// not go on, or its later writes would land outside any transaction.
    #[error("the transaction was rolled back by the database: {0}")]
    RolledBack(String),
    /// Encoding or decoding one of the engine's stored records failed.
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(#[from] serde_json::Error),
    /// Exporting a secret from the epoch failed.
    #[error("MLS setup error: {0}")]
    MlsSetup(#[from] kith_crypto::mls::MlsSetupError),
    /// An application message's content is malformed.
    #[error("bad application content: {0}")]
    Content(#[from] crate::content::ContentError),
    /// A frame could not be encoded.
    #[error("frame error: {0}")]
    Frame(#[from] kith_crypto::frame::FrameError),
    /// This device's own certificate is not valid.
    #[error("this device's certificate is invalid")]
    OwnCertificate(#[source] kith_crypto::certificate::CertificateError),
    /// Only admin devices may add or remove members, or make other devices admins.
    #[error("this device is not an admin of the group")]
    NotAdmin,
    /// A commit changes the group context in a way Kith does not allow (anything but adding
    /// member devices to the admin list).
    #[error("a commit changes the group context in a way that is not allowed")]
    ForbiddenContextChange,
    /// The operation needs at least one item and got none.
    #[error("nothing to do: the list is empty")]
    EmptyInput,
}

impl GroupError {
    /// Whether the call's transaction is failing, so the call must end with this error
    /// rather than pass over it.
    pub(crate) fn ends_the_call(&self) -> bool {
        matches!(self, Self::Database(_) | Self::RolledBack(_))
    }
}

/// Hands back an error the caller means to log and pass over, unless SQLite has rolled the
/// transaction back under it: then [`GroupError::RolledBack`], which ends the call.
///
/// openmls reports a failed storage write as its own error, which the engine passes over
/// where an MLS refusal is expected (a commit that does not apply, a Welcome it cannot
/// open). If that write was rolled back whole, every write after it would be committed on
/// its own, and a crash between two of them would leave the state torn (seed 6174: an
/// interrupted write made an intent look impossible, and the intent was deleted outside
/// the rolled-back transaction).
pub(crate) fn unless_rolled_back<E: std::fmt::Debug>(
    db: &rusqlite::Connection,
    error: E,
) -> Result<E, GroupError> {
    if db.is_autocommit() {
        return Err(GroupError::RolledBack(format!("{error:?}")));
    }
    Ok(error)
}

/// Turns any openmls error into [`GroupError::Mls`], keeping its description.
pub(crate) fn mls<E: std::fmt::Debug>(error: E) -> GroupError {
    GroupError::Mls(format!("{error:?}"))
}

/// Turns a tls_codec error into [`GroupError::MalformedMls`].
pub(crate) fn malformed<E: std::fmt::Debug>(error: E) -> GroupError {
    GroupError::MalformedMls(format!("{error:?}"))
}
