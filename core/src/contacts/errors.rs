//! What can go wrong making contacts.
use thiserror::Error;

/// A contact, invite or handshake error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ContactError {
    /// The link is not a Kith invite, or it was damaged or tampered with.
    #[error("invalid invite link: {0}")]
    Link(kith_crypto::invite::InviteError),
    /// The link expired before it was used.
    #[error("the invite link expired at {expires_at} (Unix seconds); ask for a new one")]
    Expired {
        /// When it expired.
        expires_at: u64,
    },
    /// The link is of a kind this command does not take (a device link, for example).
    #[error("this link is a {0}, not a contact or group invite")]
    WrongKind(&'static str),
    /// The link is this account's own invite.
    #[error("this is your own invite link")]
    OwnInvite,
    /// The time to live is zero or longer than [`super::MAX_INVITE_TTL`].
    #[error("invite lifetime of {0} s is out of range (1..={max})", max = super::MAX_INVITE_TTL)]
    BadTtl(u64),
    /// A handshake message did not decode.
    #[error("handshake message: {0}")]
    Wire(super::wire::WireError),
    /// The handshake channel failed (a tampered or replayed message).
    #[error("handshake channel: {0}")]
    Channel(kith_crypto::channel::ChannelError),
    /// A device certificate or KeyPackage does not verify for the identity it claims.
    #[error("certificate: {0}")]
    Certificate(kith_crypto::certificate::CertificateError),
    /// A KeyPackage is malformed or invalid.
    #[error("KeyPackage: {0}")]
    KeyPackage(String),
    /// No contact matches the given address or fingerprint.
    #[error("no contact matches {0:?}")]
    UnknownContact(String),
    /// A contact device has no KeyPackage left to add it with.
    #[error("no KeyPackage of the contact's device {address} is stocked; sync and try again")]
    NoKeyPackage {
        /// The device's delivery address.
        address: String,
    },
    /// The group engine failed while making KeyPackages.
    #[error("group: {0}")]
    Group(crate::group::GroupError),
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    /// A stored value does not decode (a damaged database).
    #[error("stored {0} is malformed")]
    Malformed(&'static str),
}

// `From` by hand rather than `#[from]`: the message already includes the cause, and a
// `source` as well would print it twice in an error chain (`kith: …: x: x`).
impl From<kith_crypto::invite::InviteError> for ContactError {
    fn from(error: kith_crypto::invite::InviteError) -> Self {
        Self::Link(error)
    }
}

impl From<super::wire::WireError> for ContactError {
    fn from(error: super::wire::WireError) -> Self {
        Self::Wire(error)
    }
}

impl From<kith_crypto::channel::ChannelError> for ContactError {
    fn from(error: kith_crypto::channel::ChannelError) -> Self {
        Self::Channel(error)
    }
}

impl From<kith_crypto::certificate::CertificateError> for ContactError {
    fn from(error: kith_crypto::certificate::CertificateError) -> Self {
        Self::Certificate(error)
    }
}

impl From<crate::group::GroupError> for ContactError {
    fn from(error: crate::group::GroupError) -> Self {
        Self::Group(error)
    }
}

impl From<rusqlite::Error> for ContactError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}
