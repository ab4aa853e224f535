//! The IMAP server: the subset of IMAP4rev1 that chatmail-style clients use (async-imap,
//! Python's imaplib, curl), with IDLE woken by deliveries, UIDPLUS, SASL PLAIN and STARTTLS.
//!
//! Parsing and encoding are imap-codec's; [`session`] is a sans-IO state machine (client
//! bytes and store answers in, response bytes and store requests out); [`edge`] is the thin
//! tokio layer with the socket, TLS, timeouts and limits.
//!
//! ```no_run
//! # async fn example(ctx: kith_relay::context::RelayContext) -> Result<(), kith_relay::imap::ImapError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9930").await.map_err(kith_relay::imap::ImapError::Accept)?;
//! kith_relay::imap::serve(listener, ctx, true).await
//! # }
//! ```
mod edge;
mod fetch;
mod fuzzing;
mod render;
mod search;
mod selected;
mod session;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::context::RelayContext;

#[doc(hidden)]
pub use fuzzing::fuzz_session;

/// The IMAP listener failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// Accepting connections failed with an error that will not go away by itself.
    #[error("cannot accept IMAP connections: {0}")]
    Accept(#[source] std::io::Error),
}

/// Accepts IMAP connections on `listener` until `ctx.shutdown` is cancelled, one task per
/// connection; then tells every session goodbye and waits for them to close.
///
/// With `implicit_tls` every connection starts with a TLS handshake (port 993); without it
/// the session offers STARTTLS (port 143). Logins need TLS unless
/// `listen.allow_plaintext_on_loopback` is set and the client is on loopback.
pub async fn serve(
    listener: TcpListener,
    ctx: RelayContext,
    implicit_tls: bool,
) -> Result<(), ImapError> {
    let tracker = TaskTracker::new();
    let mut next_id: u64 = 0;
    let result = loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                next_id += 1;
                let connection = edge::handle(tcp, peer.ip(), ctx.clone(), implicit_tls, next_id);
                tracker.spawn(connection);
            }
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "accepting an IMAP connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => break Err(ImapError::Accept(error)),
        }
    };
    tracker.close();
    tracker.wait().await;
    result
}

/// Accept errors that pass: the peer gave up, or we are out of file descriptors or memory
/// for a moment.
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory
    ) || matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12))
}

#[cfg(test)]
mod session_tests;
