//! What can go wrong talking to the relay.
use std::path::PathBuf;

use thiserror::Error;

use crate::db::DbError;

/// A transport error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The trusted-certificate file could not be read or holds no certificate.
    #[error("cannot load trusted certificates from {path}: {reason}")]
    TrustAnchor {
        /// The PEM file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS client configuration could not be built, or the host is not a valid name.
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// The TCP connection or the TLS handshake failed.
    #[error("cannot connect to {what}: {source}")]
    Connect {
        /// "IMAP" or "SMTP".
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A network wait took longer than its timeout.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The IMAP server answered with an error or broke the protocol.
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    /// The IMAP server refused the login.
    #[error("the relay refused the IMAP login: {0}")]
    LoginRejected(String),
    /// The server's SELECT response had no UIDVALIDITY.
    #[error("the relay did not report UIDVALIDITY for INBOX")]
    MissingUidValidity,
    /// SMTP submission failed.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// An address could not be used as an SMTP address.
    #[error("invalid mail address: {0}")]
    InvalidAddress(#[from] lettre::address::AddressError),
    /// The account database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}
