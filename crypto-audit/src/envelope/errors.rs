//! What can go wrong when checking, sealing or opening an envelope.

/// Why a message is not a valid Kith envelope, or could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes are not an RFC 5322 message at all.
    #[error("not an RFC 5322 message")]
    NotAMessage,
    /// The top-level Content-Type is not
    /// `multipart/encrypted; protocol="application/pgp-encrypted"`.
    #[error("top-level Content-Type is not multipart/encrypted with the PGP protocol")]
    NotMultipartEncrypted,
    /// The first MIME part is missing or is not `application/pgp-encrypted` "Version: 1".
    #[error("the application/pgp-encrypted \"Version: 1\" part is missing or wrong")]
    MissingVersionPart,
    /// The second MIME part is missing or is not `application/octet-stream`.
    #[error("the application/octet-stream OpenPGP part is missing")]
    MissingPgpPart,
    /// The multipart body holds more than the two PGP/MIME parts.
    #[error("multipart/encrypted holds {count} parts, expected 2")]
    ExtraParts {
        /// How many parts there were.
        count: usize,
    },
    /// The OpenPGP part is not a well-formed ASCII-armored OpenPGP message.
    #[error("bad ASCII armor: {reason}")]
    BadArmor {
        /// What the armor reader reported.
        reason: String,
    },
    /// The armored OpenPGP message is empty.
    #[error("the OpenPGP message is empty")]
    EmptyPayload,
    /// A packet header or body could not be parsed (for example, it is truncated).
    #[error("malformed OpenPGP packet at offset {offset}: {reason}")]
    BadPacket {
        /// Byte offset of the packet in the de-armored payload.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// A packet other than PKESK (1) or SKESK (3) came before the SEIPD packet, or the
    /// last packet is not a SEIPD (18).
    #[error("unexpected OpenPGP packet with tag {tag} at offset {offset}")]
    UnexpectedPacket {
        /// The packet tag that was found.
        tag: u8,
        /// Byte offset of the packet in the de-armored payload.
        offset: usize,
    },
    /// The SEIPD packet has a version other than 1 or 2.
    #[error("SEIPD packet version {version} is not 1 or 2")]
    UnsupportedSeipdVersion {
        /// The version octet found.
        version: u8,
    },
    /// No session-key packet (PKESK or SKESK) precedes the SEIPD packet.
    #[error("no PKESK or SKESK packet before the SEIPD packet")]
    MissingSessionKeyPacket,
    /// The payload has no SEIPD packet.
    #[error("the OpenPGP message has no SEIPD packet")]
    MissingSeipd,
    /// Bytes or packets follow the SEIPD packet.
    #[error("{extra} bytes follow the SEIPD packet")]
    TrailingData {
        /// How many bytes follow the end of the SEIPD packet.
        extra: usize,
    },
    /// sequoia reported an error while building or reading OpenPGP data.
    #[error("OpenPGP error: {reason}")]
    OpenPgp {
        /// sequoia's message.
        reason: String,
    },
    /// The key does not open this envelope (a wrong key, or not addressed to it).
    #[error("the key does not open this envelope")]
    WrongKey,
    /// The ciphertext failed authentication, or the decrypted message is malformed.
    #[error("the envelope failed to decrypt: {reason}")]
    DecryptionFailed {
        /// What failed.
        reason: String,
    },
    /// The decrypted content is not a valid Kith frame.
    #[error("bad frame inside the envelope: {0}")]
    BadFrame(#[from] crate::frame::FrameError),
    /// The sender address is not of the form `local@domain` in plain ASCII.
    #[error("the sender address is not a plain local@domain address")]
    BadSenderAddress,
}

impl EnvelopeError {
    /// Wraps a sequoia error.
    pub(crate) fn openpgp(err: impl std::fmt::Display) -> Self {
        EnvelopeError::OpenPgp {
            reason: err.to_string(),
        }
    }
}
