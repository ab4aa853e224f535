//! The inbox cursor (UIDVALIDITY, last processed UID) and the processed-envelope table.
use rusqlite::{params, Connection, OptionalExtension};

use super::DbError;

/// How far the inbox has been processed: every message of the mailbox with this
/// UIDVALIDITY and a UID up to `last_uid` has had its effects committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxCursor {
    /// The mailbox's UIDVALIDITY when the cursor was written.
    pub uid_validity: u32,
    /// The highest UID whose effects are committed.
    pub last_uid: u32,
}

/// The key an envelope is de-duplicated by: its Message-ID, or, for a message without one,
/// its place in the mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey(pub String);

/// The stored cursor, if any.
pub(crate) fn load_cursor(conn: &Connection) -> Result<Option<InboxCursor>, DbError> {
    Ok(conn
        .query_row(
            "SELECT uid_validity, last_uid FROM inbox_cursor",
            [],
            |row| {
                Ok(InboxCursor {
                    uid_validity: row.get(0)?,
                    last_uid: row.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Writes the cursor (in the caller's transaction).
pub(crate) fn store_cursor(conn: &Connection, cursor: InboxCursor) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO inbox_cursor (singleton, uid_validity, last_uid) VALUES (1, ?1, ?2)
         ON CONFLICT (singleton) DO UPDATE SET uid_validity = ?1, last_uid = ?2",
        params![cursor.uid_validity, cursor.last_uid],
    )?;
    Ok(())
}

/// Whether an envelope with this key has already been processed.
pub(crate) fn is_processed(conn: &Connection, key: &MessageKey) -> Result<bool, DbError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM processed_envelopes WHERE message_id = ?1",
            [&key.0],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Records an envelope as processed (in the caller's transaction).
pub(crate) fn mark_processed(conn: &Connection, key: &MessageKey, now: i64) -> Result<(), DbError> {
    conn.execute(
        "INSERT OR IGNORE INTO processed_envelopes (message_id, processed_at) VALUES (?1, ?2)",
        params![key.0, now],
    )?;
    Ok(())
}

/// Forgets processed envelopes older than `before` (the relay deletes everything after its
/// expiry, so an older duplicate cannot arrive).
pub(crate) fn prune_processed(conn: &Connection, before: i64) -> Result<usize, DbError> {
    Ok(conn.execute(
        "DELETE FROM processed_envelopes WHERE processed_at < ?1",
        [before],
    )?)
}
