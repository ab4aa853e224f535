//! kith-core: the client core library every Kith client is a thin shell over.
//!
//! - [`account`]: one account per data directory (identity key, device key and certificate,
//!   relay credentials), created the chatmail way on first use;
//! - [`db`]: the account's SQLite database, where every change that belongs together is
//!   one transaction (MLS state, our rows, the inbox cursor, the outbox);
//! - [`transport`]: the outbox (SMTP submission) and the inbox loop (IMAP with IDLE), which
//!   deletes a message from the relay only after its effects are committed;
//! - [`events`]: the typed event stream clients render.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kith_core::account::Account;
//! use kith_core::transport::{InboxOptions, Incoming, OutboxOptions};
//! use tokio_util::sync::CancellationToken;
//!
//! let account = Account::open(std::path::Path::new("/var/lib/kith/alice"))?;
//! let stop = CancellationToken::new();
//! let outbox = account.outbox(OutboxOptions::default());
//! tokio::spawn({ let stop = stop.clone(); async move { outbox.run(stop).await } });
//! let handler = |tx: &rusqlite::Transaction<'_>, incoming: &Incoming<'_>| {
//!     // open the envelope, run the group engine, write its effects through `tx`
//!     Ok::<(), std::convert::Infallible>(())
//! };
//! account.inbox(InboxOptions::default()).run(handler, stop).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod account;
pub mod db;
pub mod events;
pub mod transport;
