//! The engine's own tables (snapshots of openmls's rows are in `snapshot.rs`).
use rusqlite::{params, Connection, OptionalExtension};

use super::errors::GroupError;
use super::GroupId;

/// How many past epochs a device can roll back to, re-send commits from, and keep envelope
/// keys for (H in DESIGN.md).
pub const HORIZON: u64 = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kith_groups (
    group_id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    name_sent_at INTEGER NOT NULL,
    name_message_id BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_epochs (
    group_id BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    epoch_id BLOB NOT NULL,
    envelope_key BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch)
);
CREATE TABLE IF NOT EXISTS kith_commits (
    group_id BLOB NOT NULL,
    parent_epoch INTEGER NOT NULL,
    class INTEGER NOT NULL,
    hash BLOB NOT NULL,
    message BLOB NOT NULL,
    PRIMARY KEY (group_id, parent_epoch)
);
CREATE TABLE IF NOT EXISTS kith_seen (
    group_id BLOB NOT NULL,
    message_id BLOB NOT NULL,
    PRIMARY KEY (group_id, message_id)
);
CREATE TABLE IF NOT EXISTS kith_sent (
    group_id BLOB NOT NULL,
    message_id BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    message BLOB NOT NULL,
    PRIMARY KEY (group_id, message_id)
);
CREATE TABLE IF NOT EXISTS kith_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id BLOB NOT NULL,
    intent TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    parent_epoch INTEGER,
    commit_hash BLOB
);
CREATE TABLE IF NOT EXISTS kith_stash (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_used_key_packages (
    key_package_ref BLOB PRIMARY KEY,
    group_id BLOB NOT NULL,
    joined_epoch INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_resent (
    group_id BLOB NOT NULL,
    address TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    PRIMARY KEY (group_id, address, epoch)
);
";

/// Creates the engine's tables (idempotent). openmls's own tables are created by
/// `kith_crypto::mls::run_migrations`, which must run first.
pub fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(SCHEMA)?;
    super::snapshot::migrate(db)?;
    // Admins used to be kept per device (grants as application messages); they now live
    // in the group context (admin.rs), and these tables are dropped.
    db.execute_batch(
        "DROP TABLE IF EXISTS kith_admin_roots;
         DROP TABLE IF EXISTS kith_admin_grants;
         DROP TABLE IF EXISTS kith_held_commits;",
    )?;
    super::removal::migrate(db)?;
    super::lineage::migrate(db)?;
    super::branch_lost::migrate(db)?;
    super::fork_notice::migrate(db)?;
    super::kept_notices::migrate(db)?;
    super::join_hash::migrate(db)?;
    super::own_commits::migrate(db)?;
    super::past_membership::migrate(db)?;
    super::repair::migrate(db)
}

/// Forgets snapshots, commits, envelope keys and settled intents older than the horizon.
pub(crate) fn prune(db: &Connection, group: &GroupId, current: u64) -> Result<(), GroupError> {
    let Some(oldest) = current.checked_sub(HORIZON) else {
        return Ok(());
    };
    let o = oldest as i64;
    super::snapshot::prune(db, group, o)?;
    for sql in [
        "DELETE FROM kith_sent WHERE group_id = ?1 AND epoch < ?2",
        "DELETE FROM kith_resent WHERE group_id = ?1 AND epoch < ?2",
        "DELETE FROM kith_intents WHERE group_id = ?1 AND parent_epoch < ?2",
    ] {
        db.execute(sql, params![group.0, o])?;
    }
    // Epoch ids, keys and the commit log stay longer: they detect deep forks (repair.rs).
    let detect = current.saturating_sub(super::repair::DETECT_EPOCHS) as i64;
    for sql in [
        "DELETE FROM kith_commits WHERE group_id = ?1 AND parent_epoch < ?2",
        "DELETE FROM kith_epochs WHERE group_id = ?1 AND epoch < ?2",
        "DELETE FROM kith_fork_pins WHERE group_id = ?1 AND parent_epoch < ?2",
        "DELETE FROM kith_epoch_members WHERE group_id = ?1 AND epoch < ?2",
    ] {
        db.execute(sql, params![group.0, detect])?;
    }
    super::own_commits::prune(db, group, detect)?;
    super::past_membership::prune(db, group, detect as u64)?;
    retire_key_packages(db, group, current)
}

/// Deletes everything the engine keeps about a group (after we were removed or left).
pub(crate) fn forget_group(db: &Connection, group: &GroupId) -> Result<(), GroupError> {
    for table in [
        "kith_groups",
        "kith_epochs",
        "kith_commits",
        "kith_sent",
        "kith_intents",
        "kith_resent",
        "kith_snap_group_data",
        "kith_snap_epoch_keys_pairs",
        "kith_snap_own_leaf_nodes",
        "kith_snap_proposals",
        "kith_snap_encryption_keys",
    ]
    .into_iter()
    .chain(super::removal::TABLES)
    .chain([
        super::repair::TABLE,
        super::lineage::TABLE,
        super::branch_lost::TABLE,
        super::join_hash::JOINS,
        super::kept_notices::TABLE,
        super::own_commits::TABLE,
    ])
    .chain(super::fork_notice::TABLES)
    {
        db.execute(
            &format!("DELETE FROM {table} WHERE group_id = ?1"),
            params![group.0],
        )?;
    }
    Ok(())
}

/// Runs `trial` inside the savepoint `name`: what it changes — in the database and in
/// `out` — stays only if it returns `Ok(true)`; otherwise everything is as before. The
/// outer `Err` is a failure to roll back; the inner result is `trial`'s own.
pub(crate) fn attempt(
    db: &Connection,
    name: &str,
    out: &mut super::Output,
    trial: impl FnOnce(&mut super::Output) -> Result<bool, GroupError>,
) -> Result<Result<bool, GroupError>, GroupError> {
    db.execute_batch(&format!("SAVEPOINT {name}"))?;
    let mut kept = super::Output::default();
    let result = trial(&mut kept);
    if matches!(result, Ok(true)) {
        db.execute_batch(&format!("RELEASE {name}"))?;
        out.extend(kept);
    } else {
        db.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))?;
    }
    Ok(result)
}

/// A commit this device merged, as the commit log keeps it.
#[derive(Debug, Clone)]
pub(crate) struct LoggedCommit {
    pub(crate) class: i64,
    pub(crate) hash: Vec<u8>,
    pub(crate) message: Vec<u8>,
}

/// Records the commit merged on top of `parent_epoch`.
pub(crate) fn log_commit(
    db: &Connection,
    group: &GroupId,
    parent_epoch: u64,
    commit: &LoggedCommit,
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_commits (group_id, parent_epoch, class, hash, message)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            group.0,
            parent_epoch as i64,
            commit.class,
            commit.hash,
            commit.message
        ],
    )?;
    Ok(())
}

/// The commit merged on top of `parent_epoch`, if still retained.
pub(crate) fn logged_commit(
    db: &Connection,
    group: &GroupId,
    parent_epoch: u64,
) -> Result<Option<LoggedCommit>, GroupError> {
    Ok(db
        .query_row(
            "SELECT class, hash, message FROM kith_commits WHERE group_id = ?1 AND parent_epoch = ?2",
            params![group.0, parent_epoch as i64],
            |r| {
                Ok(LoggedCommit {
                    class: r.get(0)?,
                    hash: r.get(1)?,
                    message: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Records an epoch's id and envelope key.
pub(crate) fn record_epoch(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
    epoch_id: &[u8; 32],
    envelope_key: &[u8; 32],
) -> Result<(), GroupError> {
    record_epoch_in(db, "kith_epochs", group, epoch, epoch_id, envelope_key)
}

/// Records an epoch's id and envelope key in `table` (`kith_epochs`, or the table of
/// past memberships, which has the same columns).
pub(crate) fn record_epoch_in(
    db: &Connection,
    table: &str,
    group: &GroupId,
    epoch: u64,
    epoch_id: &[u8; 32],
    envelope_key: &[u8; 32],
) -> Result<(), GroupError> {
    db.execute(
        &format!(
            "INSERT OR REPLACE INTO {table} (group_id, epoch, epoch_id, envelope_key)
             VALUES (?1, ?2, ?3, ?4)"
        ),
        params![group.0, epoch as i64, &epoch_id[..], &envelope_key[..]],
    )?;
    Ok(())
}

/// An epoch's id and envelope key.
pub(crate) type EpochRecord = ([u8; 32], zeroize::Zeroizing<[u8; 32]>);

/// The recorded (epoch id, envelope key) of one epoch.
pub(crate) fn epoch_record(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
) -> Result<Option<EpochRecord>, GroupError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = db
        .query_row(
            "SELECT epoch_id, envelope_key FROM kith_epochs WHERE group_id = ?1 AND epoch = ?2",
            params![group.0, epoch as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(id, key)| {
        let id: [u8; 32] = id.try_into().ok()?;
        let key: [u8; 32] = key.as_slice().try_into().ok()?;
        Some((id, zeroize::Zeroizing::new(key)))
    }))
}

/// Marks an application message id as seen; false if it had been seen already.
pub(crate) fn mark_seen(
    db: &Connection,
    group: &GroupId,
    id: &[u8; 16],
) -> Result<bool, GroupError> {
    let inserted = db.execute(
        "INSERT OR IGNORE INTO kith_seen (group_id, message_id) VALUES (?1, ?2)",
        params![group.0, &id[..]],
    )?;
    Ok(inserted == 1)
}

/// Adds an envelope that no current key opens to the stash.
pub(crate) fn stash(db: &Connection, now: u64, envelope: &[u8]) -> Result<i64, GroupError> {
    db.execute(
        "INSERT INTO kith_stash (envelope, received_at) VALUES (?1, ?2)",
        params![envelope, now as i64],
    )?;
    Ok(db.last_insert_rowid())
}

/// Every stashed envelope, oldest first.
pub(crate) fn stashed(db: &Connection) -> Result<Vec<(i64, Vec<u8>)>, GroupError> {
    let mut stmt = db.prepare("SELECT id, envelope FROM kith_stash ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes a stashed envelope (it opened, or it expired).
pub(crate) fn unstash(db: &Connection, id: i64) -> Result<(), GroupError> {
    db.execute("DELETE FROM kith_stash WHERE id = ?1", params![id])?;
    Ok(())
}

/// Drops stashed envelopes received before `cutoff`.
pub(crate) fn expire_stash(db: &Connection, cutoff: u64) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_stash WHERE received_at < ?1",
        params![cutoff as i64],
    )?;
    Ok(())
}

/// Records that we re-sent commits from `epoch` to `address`; false if we already had.
pub(crate) fn mark_resent(
    db: &Connection,
    group: &GroupId,
    address: &str,
    epoch: u64,
) -> Result<bool, GroupError> {
    Ok(db.execute(
        "INSERT OR IGNORE INTO kith_resent (group_id, address, epoch) VALUES (?1, ?2, ?3)",
        params![group.0, address, epoch as i64],
    )? == 1)
}

/// Applies a rename if it is later by (time, message id) than the current name; true if
/// the name changed.
pub(crate) fn apply_rename(
    db: &Connection,
    group: &GroupId,
    name: &str,
    sent_at: u64,
    id: &[u8; 16],
) -> Result<bool, GroupError> {
    let changed = db.execute(
        "UPDATE kith_groups SET name = ?2, name_sent_at = ?3, name_message_id = ?4
         WHERE group_id = ?1 AND (name_sent_at < ?3 OR (name_sent_at = ?3 AND name_message_id < ?4))",
        params![group.0, name, sent_at as i64, &id[..]],
    )?;
    Ok(changed == 1)
}

/// Creates the engine's row for a group joined from a Welcome (name unknown until the
/// name message arrives).
pub(crate) fn ensure_group_row(db: &Connection, group: &GroupId) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR IGNORE INTO kith_groups (group_id, name, name_sent_at, name_message_id)
         VALUES (?1, '', 0, x'')",
        params![group.0],
    )?;
    Ok(())
}

/// Records an intent, due at `not_before`.
pub(crate) fn add_intent(
    db: &Connection,
    group: &GroupId,
    intent: &super::intents::Intent,
    not_before: u64,
) -> Result<(), GroupError> {
    db.execute(
        "INSERT INTO kith_intents (group_id, intent, not_before) VALUES (?1, ?2, ?3)",
        params![group.0, serde_json::to_string(intent)?, not_before as i64],
    )?;
    Ok(())
}

/// The group's intents that no commit of ours carries yet and that are due at `now`.
pub(crate) fn due_intents(
    db: &Connection,
    group: &GroupId,
    now: u64,
) -> Result<Vec<(i64, super::intents::Intent)>, GroupError> {
    let mut stmt = db.prepare(
        "SELECT id, intent FROM kith_intents
         WHERE group_id = ?1 AND commit_hash IS NULL AND not_before <= ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![group.0, now as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut intents = Vec::new();
    for row in rows {
        let (id, text) = row?;
        intents.push((id, serde_json::from_str(&text)?));
    }
    Ok(intents)
}

/// An intent as stored: what it asks, when it is due, and the commit of ours that carries it.
pub(crate) struct StoredIntent {
    /// The change asked for.
    pub(crate) intent: super::intents::Intent,
    /// When it is due (`AWAITING_ADMIN` while it waits for admin rights).
    pub(crate) not_before: i64,
    /// The parent epoch and hash of our commit that carries it, once there is one.
    pub(crate) settled: Option<(u64, Vec<u8>)>,
}

/// Every intent of the group, in the order they were asked for.
pub(crate) fn all_intents(
    db: &Connection,
    group: &GroupId,
) -> Result<Vec<StoredIntent>, GroupError> {
    let mut stmt = db.prepare(
        "SELECT intent, not_before, parent_epoch, commit_hash FROM kith_intents
         WHERE group_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![group.0], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<Vec<u8>>>(3)?,
        ))
    })?;
    let mut intents = Vec::new();
    for row in rows {
        let (text, not_before, parent, hash) = row?;
        intents.push(StoredIntent {
            intent: serde_json::from_str(&text)?,
            not_before,
            settled: parent.zip(hash).map(|(p, h)| (p as u64, h)),
        });
    }
    Ok(intents)
}

/// The `not_before` of an intent that waits until we are an admin again: never due by time.
pub(crate) const AWAITING_ADMIN: i64 = i64::MAX;

/// Parks an intent until we are an admin again (`wake_awaiting_admin`).
pub(crate) fn await_admin(db: &Connection, id: i64) -> Result<(), GroupError> {
    db.execute(
        "UPDATE kith_intents SET not_before = ?2 WHERE id = ?1",
        params![id, AWAITING_ADMIN],
    )?;
    Ok(())
}

/// Makes the group's intents that wait for admin rights due at `now`.
pub(crate) fn wake_awaiting_admin(
    db: &Connection,
    group: &GroupId,
    now: u64,
) -> Result<(), GroupError> {
    db.execute(
        "UPDATE kith_intents SET not_before = ?3
         WHERE group_id = ?1 AND not_before = ?2 AND commit_hash IS NULL",
        params![group.0, AWAITING_ADMIN, now as i64],
    )?;
    Ok(())
}

/// Forgets an intent (done, moot, or impossible).
pub(crate) fn delete_intent(db: &Connection, id: i64) -> Result<(), GroupError> {
    db.execute("DELETE FROM kith_intents WHERE id = ?1", params![id])?;
    Ok(())
}

/// Notes that our commit `hash` on `parent_epoch` carries the intent.
pub(crate) fn settle_intent(
    db: &Connection,
    id: i64,
    parent_epoch: u64,
    hash: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "UPDATE kith_intents SET parent_epoch = ?2, commit_hash = ?3 WHERE id = ?1",
        params![id, parent_epoch as i64, hash],
    )?;
    Ok(())
}

/// After a rollback to `parent_epoch`: intents whose commit was on the abandoned branch are
/// pending again, due at `now`.
pub(crate) fn reopen_intents(
    db: &Connection,
    group: &GroupId,
    parent_epoch: u64,
    now: u64,
) -> Result<(), GroupError> {
    db.execute(
        "UPDATE kith_intents SET parent_epoch = NULL, commit_hash = NULL, not_before = ?3
         WHERE group_id = ?1 AND parent_epoch >= ?2",
        params![group.0, parent_epoch as i64, now as i64],
    )?;
    Ok(())
}

/// We leave our branch at `parent_epoch`: reopens the intents whose commits were on it and
/// returns the messages we sent on it (`sent_after`), to redo on the new branch.
pub(crate) fn abandon_from(
    db: &Connection,
    group: &GroupId,
    parent_epoch: u64,
    now: u64,
) -> Result<Vec<Vec<u8>>, GroupError> {
    reopen_intents(db, group, parent_epoch, now)?;
    sent_after(db, group, parent_epoch)
}

/// Our own application messages sent in epochs after `parent_epoch` (on a branch that fork
/// choice just abandoned), as encoded `AppMessage`s.
pub(crate) fn sent_after(
    db: &Connection,
    group: &GroupId,
    parent_epoch: u64,
) -> Result<Vec<Vec<u8>>, GroupError> {
    let mut stmt = db.prepare(
        "SELECT message FROM kith_sent WHERE group_id = ?1 AND epoch > ?2 ORDER BY rowid",
    )?;
    let rows = stmt.query_map(params![group.0, parent_epoch as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every message this device still remembers sending to the group (for re-sending after
/// it re-joins from a Welcome on another branch).
pub(crate) fn all_sent(db: &Connection, group: &GroupId) -> Result<Vec<Vec<u8>>, GroupError> {
    let mut stmt =
        db.prepare("SELECT message FROM kith_sent WHERE group_id = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map(params![group.0], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records the (last-resort) KeyPackage a Welcome used, to delete it after the horizon.
pub(crate) fn used_key_package(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
    reference: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_used_key_packages (key_package_ref, group_id, joined_epoch)
         VALUES (?1, ?2, ?3)",
        params![reference, group.0, epoch as i64],
    )?;
    Ok(())
}

/// Deletes the KeyPackages used to join `group` more than [`HORIZON`] epochs before
/// `current` from openmls's storage (their references are stored in its JSON codec).
pub(crate) fn retire_key_packages(
    db: &Connection,
    group: &GroupId,
    current: u64,
) -> Result<(), GroupError> {
    let Some(oldest) = current.checked_sub(HORIZON) else {
        return Ok(());
    };
    db.execute(
        "DELETE FROM openmls_key_packages WHERE key_package_ref IN
         (SELECT key_package_ref FROM kith_used_key_packages WHERE group_id = ?1 AND joined_epoch < ?2)",
        params![group.0, oldest as i64],
    )?;
    db.execute(
        "DELETE FROM kith_used_key_packages WHERE group_id = ?1 AND joined_epoch < ?2",
        params![group.0, oldest as i64],
    )?;
    Ok(())
}

/// Whether this device is in the group (cheaper than loading the MLS group).
pub(crate) fn is_member_group(db: &Connection, group: &GroupId) -> Result<bool, GroupError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM kith_groups WHERE group_id = ?1",
            params![group.0],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
