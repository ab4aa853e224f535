//! The relay database schema and connection settings.
//!
//! One SQLite file, `relay.db`, in WAL mode with `synchronous = FULL`: a transaction is
//! durable (fsynced) when COMMIT returns, and the relay acknowledges a message only after
//! that. `secure_delete` overwrites deleted ciphertext instead of leaving it in free pages.
use rusqlite::Connection;

/// Current schema version, kept in `PRAGMA user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    address       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    next_uid      INTEGER NOT NULL DEFAULT 1,
    used_bytes    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One row per accepted message body, shared by every local mailbox and queue entry it went to.
CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY,
    body        BLOB NOT NULL,
    size        INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    refs        INTEGER NOT NULL
);

-- One row per message in a mailbox.
CREATE TABLE IF NOT EXISTS mailbox (
    address     TEXT NOT NULL,
    uid         INTEGER NOT NULL,
    message_id  INTEGER NOT NULL REFERENCES messages(id),
    msgid       TEXT,
    flags       INTEGER NOT NULL DEFAULT 0,
    size        INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (address, uid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS mailbox_msgid ON mailbox(address, msgid) WHERE msgid IS NOT NULL;
CREATE INDEX IF NOT EXISTS mailbox_received ON mailbox(received_at);

-- Message-IDs already delivered to and removed from a mailbox, so that a retried
-- submission or federation hand-off is not stored twice. Pruned with expiry.
CREATE TABLE IF NOT EXISTS delivered (
    address    TEXT NOT NULL,
    msgid      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (address, msgid)
) WITHOUT ROWID;

-- Outbound deliveries to other relays: one row per destination domain.
CREATE TABLE IF NOT EXISTS queue (
    id              INTEGER PRIMARY KEY,
    domain          TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    message_id      INTEGER NOT NULL REFERENCES messages(id),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_due ON queue(next_attempt_at);
";

/// Opens a connection with the settings every connection of the store uses.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates or checks the schema.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}
