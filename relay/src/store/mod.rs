//! The relay's durable message store: accounts, mailboxes, and the outbound queue, in one
//! SQLite database under the data directory.
//!
//! Writes go through one writer thread that commits in batches (see `writer`); a write
//! returns only after its transaction is durable. Reads use a small pool of read-only
//! connections (WAL lets them run beside the writer). Every method takes the current time
//! as an argument, so that expiry and ordering are testable without a clock.
mod accounts;
mod mailbox;
mod notify;
mod queue;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

pub use accounts::{AccountPolicy, LoginOutcome};
pub use mailbox::{Flags, FlagsMode, MailboxStatus, MessageMeta};
pub use queue::QueueItem;

use crate::errors::StoreError;
use notify::Notifier;
use writer::Writer;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// Size and age limits the store enforces on delivery and expiry.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// Mailbox quota in bytes; the oldest messages are trimmed to make room.
    pub mailbox_quota_bytes: u64,
    /// Messages older than this many seconds are deleted by [`Store::expire`].
    pub expiry_secs: i64,
}

/// A message accepted over SMTP, to be stored in one transaction.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Envelope sender (MAIL FROM).
    pub sender: String,
    /// Local recipients (mailboxes on this relay).
    pub local: Vec<String>,
    /// Remote recipients, grouped by domain: one queue entry per domain.
    pub remote: Vec<(String, Vec<String>)>,
    /// The message's Message-ID, for de-duplication; `None` disables it.
    pub msgid: Option<String>,
    /// The whole message.
    pub body: bytes::Bytes,
}

/// What [`Store::accept`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptReport {
    /// Local mailboxes the message was added to.
    pub delivered: usize,
    /// Local mailboxes that already had this Message-ID (not stored again).
    pub duplicates: usize,
    /// Local recipients without a mailbox here.
    pub unknown: Vec<String>,
    /// Messages trimmed from full mailboxes to make room.
    pub trimmed: usize,
    /// Queue entries created for remote domains.
    pub queued: usize,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    data_dir: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    notifier: Notifier,
    limits: StoreLimits,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join("relay.db");
        let conn = Connection::open(&path)?;
        schema::configure(&conn)?;
        schema::migrate(&conn)?;
        let notifier = Notifier::default();
        let writer = Writer::start(conn, notifier.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                data_dir: data_dir.to_owned(),
                writer,
                readers: Mutex::new(Vec::new()),
                notifier,
                limits,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Free space on the data directory's file system, in bytes.
    pub fn available_disk_bytes(&self) -> Result<u64, StoreError> {
        fs4::available_space(&self.inner.data_dir).map_err(|source| StoreError::DataDir {
            path: self.inner.data_dir.clone(),
            source,
        })
    }

    /// A receiver whose value changes whenever `address`'s mailbox changes (for IDLE).
    pub fn watch_mailbox(&self, address: &str) -> watch::Receiver<u64> {
        // Deliveries wake the lower-cased address; a login may use any case.
        self.inner.notifier.watch(&address.to_ascii_lowercase())
    }

    /// Runs a read on a pooled read-only connection, off the async runtime.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader pool lock").pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path)?,
            };
            let result = work(&conn);
            let mut pool = inner.readers.lock().expect("reader pool lock");
            if pool.len() < 8 {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Unavailable)?
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

#[cfg(test)]
mod tests;
