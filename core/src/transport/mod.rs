//! Talking to the relay: SMTP submission of envelopes (the [`Outbox`]) and IMAP with IDLE
//! for receiving them (the [`Inbox`]).
//!
//! Both sides keep their state in the account database: the outbox is a table whose rows
//! are written in the same transaction as whatever produced the envelope, and the inbox
//! commits each message's effects together with its cursor before the message is deleted
//! from the relay. Either task may be stopped (or killed) at any point and restarted
//! without losing or repeating anything.
//!
//! TLS is rustls everywhere: the Mozilla roots by default, or exactly one certificate from a
//! PEM file for a local relay with a self-signed certificate. There is no "accept anything".
mod backoff;
mod errors;
mod imap;
mod inbox;
mod outbox;
mod smtp;
mod tls;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use errors::TransportError;
pub use inbox::{message_key, Inbox, InboxOptions, Incoming};
pub use outbox::{Outbox, OutboxOptions};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    ImplicitTls,
    /// A plain connection upgraded with STARTTLS before anything else (IMAP 143, SMTP 587).
    StartTls,
}

/// One server: host name (also the name its certificate must carry), port and security.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEndpoint {
    /// Host name to connect to and to check the certificate against.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS from the start, or STARTTLS.
    pub security: Security,
}

/// Which certificates a relay may present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TrustAnchor {
    /// The Mozilla root set (webpki-roots): any publicly trusted certificate for the host.
    WebPkiRoots,
    /// Only certificates issued by (or equal to) the certificates in this PEM file, such as
    /// the self-signed one `kith-relay init` writes for a local relay.
    PemFile(PathBuf),
}

/// A relay: its mail domain and how to reach its IMAP and SMTP submission servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEndpoint {
    /// The mail domain: this device's address is `<random>@<domain>`.
    pub domain: String,
    /// The IMAP server.
    pub imap: ServerEndpoint,
    /// The SMTP submission server.
    pub smtp: ServerEndpoint,
    /// Which certificates to accept from both.
    pub trust: TrustAnchor,
}

impl RelayEndpoint {
    /// A relay in production: IMAP on 993 and submission on 465 at `domain` itself,
    /// certificates from the public roots (chatmail's layout).
    pub fn standard(domain: &str) -> Self {
        let server = |port| ServerEndpoint {
            host: domain.to_owned(),
            port,
            security: Security::ImplicitTls,
        };
        Self {
            domain: domain.to_owned(),
            imap: server(993),
            smtp: server(465),
            trust: TrustAnchor::WebPkiRoots,
        }
    }
}

/// A relay account's login: address and password. The password is zeroized on drop and
/// never printed.
#[derive(Clone)]
pub struct Credentials {
    /// The account's address (also the IMAP/SMTP user name).
    pub address: String,
    /// The password.
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// The current time in Unix milliseconds (the edge where the clock is read).
pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
