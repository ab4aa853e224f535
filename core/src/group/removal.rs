//! Tentative removal: a commit that removes this device may still lose fork choice.
//!
//! Merging such a commit and deleting the group at once (as the engine first did) cannot be
//! undone: if a better commit for the same parent arrives — a concurrent commit that keeps
//! us — the device is gone from a group whose members still count it. Instead the engine
//! logs the removing commit as the incumbent for its parent, keeps the group's state at that
//! parent (hidden from `groups()` and closed to commands), and lets competing commits for
//! that parent through fork choice as usual. The group is forgotten once [`super::STASH_TTL`]
//! has passed without a better commit. Pending leave requests live here too: a device that
//! becomes an admin later answers the requests it has seen, and a device that asked to leave
//! sends its request again whenever the group gains devices that may answer it.
use rusqlite::{params, Connection, OptionalExtension};

use super::errors::GroupError;
use super::{GroupEngine, GroupId, Output};
use crate::content::AppMessage;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kith_removed (
    group_id BLOB PRIMARY KEY,
    parent_epoch INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE TABLE IF NOT EXISTS kith_leave_requests (
    group_id BLOB NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (group_id, address)
);
CREATE TABLE IF NOT EXISTS kith_leaving (
    group_id BLOB PRIMARY KEY,
    message BLOB NOT NULL
);
";

/// The tables, for `forget_group`.
pub(crate) const TABLES: [&str; 3] = ["kith_removed", "kith_leave_requests", "kith_leaving"];

/// Creates the tables (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// Marks the group as removing us by the commit logged on `parent`.
pub(crate) fn mark(db: &Connection, group: &GroupId, parent: u64) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_removed (group_id, parent_epoch, removed_at)
         VALUES (?1, ?2, NULL)",
        params![group.0, parent as i64],
    )?;
    Ok(())
}

/// A better commit kept us: the group is ours again.
pub(crate) fn clear(db: &Connection, group: &GroupId) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_removed WHERE group_id = ?1",
        params![group.0],
    )?;
    Ok(())
}

/// The parent epoch of the commit that (tentatively) removed us, if any.
pub(crate) fn removed_parent(db: &Connection, group: &GroupId) -> Result<Option<u64>, GroupError> {
    Ok(db
        .query_row(
            "SELECT parent_epoch FROM kith_removed WHERE group_id = ?1",
            params![group.0],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|e| e as u64))
}

/// Fails with [`GroupError::UnknownGroup`] when the group removed us.
pub(crate) fn require_active(db: &Connection, group: &GroupId) -> Result<(), GroupError> {
    match removed_parent(db, group)? {
        Some(_) => Err(GroupError::UnknownGroup),
        None => Ok(()),
    }
}

/// Groups whose removal is older than `cutoff` (stamping fresh ones with `now`).
pub(crate) fn expired(db: &Connection, now: u64, cutoff: u64) -> Result<Vec<GroupId>, GroupError> {
    db.execute(
        "UPDATE kith_removed SET removed_at = ?1 WHERE removed_at IS NULL",
        params![now as i64],
    )?;
    let mut stmt = db.prepare("SELECT group_id FROM kith_removed WHERE removed_at < ?1")?;
    let rows = stmt.query_map(params![cutoff as i64], |r| r.get::<_, Vec<u8>>(0))?;
    Ok(rows.map(|r| r.map(GroupId)).collect::<Result<_, _>>()?)
}

/// Remembers that `address` asked to leave.
pub(crate) fn leave_requested(
    db: &Connection,
    group: &GroupId,
    address: &str,
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR IGNORE INTO kith_leave_requests (group_id, address) VALUES (?1, ?2)",
        params![group.0, address],
    )?;
    Ok(())
}

/// Whether we remember that `address` asked to leave the group.
pub(crate) fn asked_to_leave(
    db: &Connection,
    group: &GroupId,
    address: &str,
) -> Result<bool, GroupError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM kith_leave_requests WHERE group_id = ?1 AND address = ?2",
            params![group.0, address],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Every address that asked to leave the group.
pub(crate) fn leave_requests(db: &Connection, group: &GroupId) -> Result<Vec<String>, GroupError> {
    let mut stmt =
        db.prepare("SELECT address FROM kith_leave_requests WHERE group_id = ?1 ORDER BY address")?;
    let rows = stmt.query_map(params![group.0], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Remembers the leave request this device sent (the encoded [`AppMessage`]), until the
/// group is forgotten.
pub(crate) fn set_leaving(
    db: &Connection,
    group: &GroupId,
    message: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_leaving (group_id, message) VALUES (?1, ?2)",
        params![group.0, message],
    )?;
    Ok(())
}

/// The leave request this device sent to the group and is still waiting on, if any.
pub(crate) fn leaving(db: &Connection, group: &GroupId) -> Result<Option<Vec<u8>>, GroupError> {
    Ok(db
        .query_row(
            "SELECT message FROM kith_leaving WHERE group_id = ?1",
            params![group.0],
            |r| r.get(0),
        )
        .optional()?)
}

impl GroupEngine {
    /// While this device waits to be removed, sends its leave request again (same id, so a
    /// device that has it drops the copy). Called after a commit that brought devices able
    /// to answer it — new members, new admins — who cannot have read the first one: it was
    /// sealed for an epoch before they joined, or (seed 5208) reached the only other admin
    /// while that admin sat on a branch it then left by being re-added, so no admin ever
    /// read it and the device stayed in for good.
    pub(crate) fn resend_leave_request(
        &self,
        db: &Connection,
        group: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        if let Some(encoded) = leaving(db, group)? {
            tracing::debug!("sending our leave request again");
            let message = AppMessage::decode(&encoded)?;
            out.outgoing.push(self.encrypt(db, group, &message, true)?);
        }
        Ok(())
    }
}
