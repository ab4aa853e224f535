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

/// Turns any openmls error into [`GroupError::Mls`], keeping its description.
pub(crate) fn mls<E: std::fmt::Debug>(error: E) -> GroupError {
    GroupError::Mls(format!("{error:?}"))
}

/// Turns a tls_codec error into [`GroupError::MalformedMls`].
pub(crate) fn malformed<E: std::fmt::Debug>(error: E) -> GroupError {
    GroupError::MalformedMls(format!("{error:?}"))
}
