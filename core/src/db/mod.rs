//! The account database: one SQLite file (`account.db`) per account, holding this device's
//! keys and relay credentials, contacts, chats, messages, the outbox, the inbox cursor and
//! openmls's state.
//!
//! The file is opened in WAL mode with `secure_delete` and `synchronous = FULL` (a message is
//! deleted from the relay once its transaction commits, so a commit must survive a power
//! cut). Every change that belongs together — MLS state, our rows, the inbox cursor, outbox
//! rows — is written in one `BEGIN IMMEDIATE` transaction through [`Database::transaction`].
pub(crate) mod device;
mod errors;
pub(crate) mod inbox;
pub(crate) mod outbox;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction};

pub use device::{DeviceRecord, StoredKeys};
pub use errors::DbError;
pub use inbox::{InboxCursor, MessageKey};
pub use outbox::{OutboxEntry, OutboxId};

/// The database file's name inside the account's data directory.
pub const DATABASE_FILE: &str = "account.db";

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle to the account database; cheap to clone, shared by the account, the inbox loop
/// and the outbox sender. One connection, behind a mutex that is never held across an
/// `.await`.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating if needed) `account.db` in `data_dir`, configures it and runs our
    /// migrations and openmls's.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let path = data_dir.join(DATABASE_FILE);
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        kith_crypto::mls::run_migrations(&mut conn).map_err(DbError::MlsMigration)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` inside one `BEGIN IMMEDIATE` transaction and commits it if `work`
    /// returns `Ok`; on `Err` (or a panic) the transaction is rolled back. Build a
    /// `kith_crypto::mls::KithProvider` over the transaction to put MLS writes into it.
    ///
    /// Blocks the calling thread for as long as `work` runs; keep it short.
    pub fn transaction<T, E>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let conn = self.lock();
        let tx = kith_crypto::mls::begin_immediate(&conn).map_err(DbError::from)?;
        let value = work(&tx)?;
        tx.commit().map_err(DbError::from)?;
        Ok(value)
    }

    /// Runs a read (or a single statement) on the connection, outside any explicit
    /// transaction.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        work(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside `transaction` rolled its transaction back while unwinding, so the
        // connection behind a poisoned lock is in a clean state.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn configure(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Pragma("journal_mode = WAL"));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;",
    )?;
    let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |row| row.get(0))?;
    if secure != 1 {
        return Err(DbError::Pragma("secure_delete = ON"));
    }
    Ok(())
}

/// Applies every migration above the file's `user_version`, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = schema::MIGRATIONS.len() as i64;
    if current > known {
        return Err(DbError::NewerSchema {
            found: current,
            known,
        });
    }
    for (index, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
