//! The outbound queue: messages waiting to be handed to other relays.
use bytes::Bytes;
use rusqlite::{params, OptionalExtension};

use super::mailbox::release_body;
use super::{Store, UnixTime};
use crate::errors::StoreError;

/// One pending delivery to one remote domain.
#[derive(Debug, Clone)]
pub struct QueueItem {
    /// Queue entry id.
    pub id: i64,
    /// Destination domain.
    pub domain: String,
    /// Envelope sender.
    pub sender: String,
    /// Recipients at that domain.
    pub recipients: Vec<String>,
    /// The whole message.
    pub body: Bytes,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the message was accepted.
    pub created_at: UnixTime,
}

impl Store {
    /// Up to `limit` entries due at `now`, oldest first.
    pub async fn due_queue_items(
        &self,
        now: UnixTime,
        limit: usize,
    ) -> Result<Vec<QueueItem>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT q.id, q.domain, q.sender, q.recipients, m.body, q.attempts, q.created_at
                 FROM queue q JOIN messages m ON m.id = q.message_id
                 WHERE q.next_attempt_at <= ?1 ORDER BY q.next_attempt_at, q.id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, limit as i64], |r| {
                Ok(QueueItem {
                    id: r.get(0)?,
                    domain: r.get(1)?,
                    sender: r.get(2)?,
                    recipients: r
                        .get::<_, String>(3)?
                        .split('\n')
                        .map(str::to_owned)
                        .collect(),
                    body: Bytes::from(r.get::<_, Vec<u8>>(4)?),
                    attempts: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// When the next queue entry falls due, if any.
    pub async fn next_queue_due(&self) -> Result<Option<UnixTime>, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT min(next_attempt_at) FROM queue", [], |r| r.get(0))?)
        })
        .await
    }

    /// Number of entries in the queue.
    pub async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT count(*) FROM queue", [], |r| r.get(0))?))
            .await
    }

    /// Removes an entry: it was delivered, or it is given up.
    pub async fn finish_queue_item(&self, id: i64) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                // A missing entry is fine (finished twice); a database error is not.
                let message_id: Option<i64> = conn
                    .query_row(
                        "DELETE FROM queue WHERE id = ?1 RETURNING message_id",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(message_id) = message_id {
                    release_body(conn, message_id)?;
                }
                Ok(((), Vec::new()))
            })
            .await
    }

    /// Records a failed attempt and when to try again.
    pub async fn retry_queue_item(
        &self,
        id: i64,
        next_attempt_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE queue SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
                    params![id, next_attempt_at],
                )?;
                Ok(((), Vec::new()))
            })
            .await
    }
}
