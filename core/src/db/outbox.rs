//! Outbox rows: envelopes waiting for the relay's 250.
use rusqlite::{params, Connection, OptionalExtension};

use super::DbError;

/// The row id of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboxId(pub i64);

/// An envelope waiting to be submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its row id.
    pub id: OutboxId,
    /// The whole RFC 5322 envelope.
    pub envelope: Vec<u8>,
    /// One relay address per recipient device.
    pub recipients: Vec<String>,
    /// Failed submissions so far.
    pub attempts: u32,
    /// Not before this Unix time.
    pub next_attempt_at: i64,
}

/// Adds an envelope (in the caller's transaction), due now.
pub(crate) fn insert(
    conn: &Connection,
    envelope: &[u8],
    recipients: &[String],
    now: i64,
) -> Result<OutboxId, DbError> {
    let recipients = serde_json::to_string(recipients).map_err(|e| DbError::Malformed {
        what: "outbox recipients",
        reason: e.to_string(),
    })?;
    conn.execute(
        "INSERT INTO outbox (envelope, recipients, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?3)",
        params![envelope, recipients, now],
    )?;
    Ok(OutboxId(conn.last_insert_rowid()))
}

/// The oldest entry due at `now`, if any.
pub(crate) fn next_due(conn: &Connection, now: i64) -> Result<Option<OutboxEntry>, DbError> {
    let row = conn
        .query_row(
            "SELECT id, envelope, recipients, attempts, next_attempt_at FROM outbox
             WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT 1",
            [now],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, u32>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((id, envelope, recipients, attempts, next_attempt_at)) = row else {
        return Ok(None);
    };
    let recipients = serde_json::from_str(&recipients).map_err(|e| DbError::Malformed {
        what: "outbox recipients",
        reason: e.to_string(),
    })?;
    Ok(Some(OutboxEntry {
        id: OutboxId(id),
        envelope,
        recipients,
        attempts,
        next_attempt_at,
    }))
}

/// When the earliest entry is due, if there is one.
pub(crate) fn earliest_due(conn: &Connection) -> Result<Option<i64>, DbError> {
    Ok(
        conn.query_row("SELECT min(next_attempt_at) FROM outbox", [], |row| {
            row.get(0)
        })?,
    )
}

/// Removes an entry the relay accepted (or refused for good).
pub(crate) fn remove(conn: &Connection, id: OutboxId) -> Result<(), DbError> {
    conn.execute("DELETE FROM outbox WHERE id = ?1", [id.0])?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub(crate) fn reschedule(
    conn: &Connection,
    id: OutboxId,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
         WHERE id = ?1",
        params![id.0, next_attempt_at, error],
    )?;
    Ok(())
}

/// How many entries are waiting.
pub(crate) fn len(conn: &Connection) -> Result<usize, DbError> {
    Ok(conn.query_row("SELECT count(*) FROM outbox", [], |row| {
        row.get::<_, i64>(0)
    })? as usize)
}
