//! Snapshots of openmls's rows, for rollback.
//!
//! openmls has no rollback, so before every merge the engine copies the group's rows of
//! openmls_sqlite_storage's tables into `kith_snap_*` tables, inside the caller's
//! transaction, and keeps the last [`HORIZON`] of them. Rolling back to a parent epoch is
//! deleting the group's rows and copying the snapshot back. The tables keyed by group id
//! are copied for that group; `openmls_encryption_keys` is keyed by public key (openmls
//! deletes our old leaf keys on merge), so the snapshot copies all of it and the restore
//! puts back what is missing.
//!
//! [`HORIZON`]: super::HORIZON
use kith_crypto::mls::openmls::prelude::GroupId as MlsGroupId;
use rusqlite::{params, Connection, OptionalExtension};

use super::errors::GroupError;
use super::GroupId;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kith_snap_group_data (
    group_id BLOB NOT NULL, snap_epoch INTEGER NOT NULL,
    provider_version INTEGER NOT NULL, mls_group_id BLOB NOT NULL,
    data_type TEXT NOT NULL, group_data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_snap_epoch_keys_pairs (
    group_id BLOB NOT NULL, snap_epoch INTEGER NOT NULL,
    provider_version INTEGER NOT NULL, mls_group_id BLOB NOT NULL,
    epoch_id BLOB NOT NULL, leaf_index INTEGER NOT NULL, key_pairs BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_snap_own_leaf_nodes (
    group_id BLOB NOT NULL, snap_epoch INTEGER NOT NULL,
    provider_version INTEGER NOT NULL, mls_group_id BLOB NOT NULL,
    id INTEGER NOT NULL, leaf_node BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_snap_proposals (
    group_id BLOB NOT NULL, snap_epoch INTEGER NOT NULL,
    provider_version INTEGER NOT NULL, mls_group_id BLOB NOT NULL,
    proposal_ref BLOB NOT NULL, proposal BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kith_snap_encryption_keys (
    group_id BLOB NOT NULL, snap_epoch INTEGER NOT NULL,
    provider_version INTEGER NOT NULL, public_key BLOB NOT NULL, key_pair BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kith_snap_group_data_i ON kith_snap_group_data (group_id, snap_epoch);
CREATE INDEX IF NOT EXISTS kith_snap_epoch_keys_pairs_i ON kith_snap_epoch_keys_pairs (group_id, snap_epoch);
CREATE INDEX IF NOT EXISTS kith_snap_own_leaf_nodes_i ON kith_snap_own_leaf_nodes (group_id, snap_epoch);
CREATE INDEX IF NOT EXISTS kith_snap_proposals_i ON kith_snap_proposals (group_id, snap_epoch);
CREATE INDEX IF NOT EXISTS kith_snap_encryption_keys_i ON kith_snap_encryption_keys (group_id, snap_epoch);
";

/// Creates the snapshot tables (idempotent); called by `store::migrate`.
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// The key openmls_sqlite_storage stores a group id under (its JSON codec).
fn mls_key(group: &GroupId) -> Result<Vec<u8>, GroupError> {
    Ok(serde_json::to_vec(&MlsGroupId::from_slice(&group.0))?)
}

/// The tables keyed by group id: (openmls table, snapshot table, payload columns).
const GROUP_TABLES: [(&str, &str, &str); 4] = [
    (
        "openmls_group_data",
        "kith_snap_group_data",
        "data_type, group_data",
    ),
    (
        "openmls_epoch_keys_pairs",
        "kith_snap_epoch_keys_pairs",
        "epoch_id, leaf_index, key_pairs",
    ),
    (
        "openmls_own_leaf_nodes",
        "kith_snap_own_leaf_nodes",
        "id, leaf_node",
    ),
    (
        "openmls_proposals",
        "kith_snap_proposals",
        "proposal_ref, proposal",
    ),
];

/// Copies the group's openmls rows as they are now (at `epoch`, before a merge).
pub(crate) fn snapshot(db: &Connection, group: &GroupId, epoch: u64) -> Result<(), GroupError> {
    drop_snapshot(db, group, epoch)?;
    save_rows(db, group, &group.0, epoch)
}

/// Copies the group's openmls rows into the snapshot tables under `slot` (the group id
/// for rollback snapshots; past memberships use slots of their own) and `epoch`.
pub(crate) fn save_rows(
    db: &Connection,
    group: &GroupId,
    slot: &[u8],
    epoch: u64,
) -> Result<(), GroupError> {
    let key = mls_key(group)?;
    for (table, snap, cols) in GROUP_TABLES {
        db.execute(
            &format!(
                "INSERT INTO {snap} (group_id, snap_epoch, provider_version, mls_group_id, {cols})
                 SELECT ?1, ?2, provider_version, group_id, {cols} FROM {table} WHERE group_id = ?3"
            ),
            params![slot, epoch as i64, key],
        )?;
    }
    db.execute(
        "INSERT INTO kith_snap_encryption_keys
         (group_id, snap_epoch, provider_version, public_key, key_pair)
         SELECT ?1, ?2, provider_version, public_key, key_pair FROM openmls_encryption_keys",
        params![slot, epoch as i64],
    )?;
    Ok(())
}

/// Replaces the group's openmls rows with those saved under `slot` and `epoch`; with no
/// rows saved there, the group is left with none.
pub(crate) fn load_rows(
    db: &Connection,
    group: &GroupId,
    slot: &[u8],
    epoch: u64,
) -> Result<(), GroupError> {
    clear_rows(db, group)?;
    for (table, snap, cols) in GROUP_TABLES {
        db.execute(
            &format!(
                "INSERT INTO {table} (provider_version, group_id, {cols})
                 SELECT provider_version, mls_group_id, {cols} FROM {snap}
                 WHERE group_id = ?1 AND snap_epoch = ?2"
            ),
            params![slot, epoch as i64],
        )?;
    }
    db.execute(
        "INSERT OR IGNORE INTO openmls_encryption_keys (provider_version, public_key, key_pair)
         SELECT provider_version, public_key, key_pair FROM kith_snap_encryption_keys
         WHERE group_id = ?1 AND snap_epoch = ?2",
        params![slot, epoch as i64],
    )?;
    Ok(())
}

/// Deletes the group's openmls rows (those keyed by group id): the group is then not
/// held until rows are loaded or a Welcome writes new ones.
pub(crate) fn clear_rows(db: &Connection, group: &GroupId) -> Result<(), GroupError> {
    let key = mls_key(group)?;
    for (table, _, _) in GROUP_TABLES {
        db.execute(
            &format!("DELETE FROM {table} WHERE group_id = ?1"),
            params![key],
        )?;
    }
    Ok(())
}

/// Copies the rows saved under `from` (slot, epoch) to `to`, beside what is there.
pub(crate) fn copy_saved(
    db: &Connection,
    from: (&[u8], u64),
    to: (&[u8], u64),
) -> Result<(), GroupError> {
    let tables = GROUP_TABLES
        .iter()
        .map(|(_, snap, cols)| (*snap, format!("provider_version, mls_group_id, {cols}")))
        .chain([(
            "kith_snap_encryption_keys",
            "provider_version, public_key, key_pair".to_owned(),
        )]);
    for (snap, cols) in tables {
        db.execute(
            &format!(
                "INSERT INTO {snap} (group_id, snap_epoch, {cols})
                 SELECT ?3, ?4, {cols} FROM {snap} WHERE group_id = ?1 AND snap_epoch = ?2"
            ),
            params![from.0, from.1 as i64, to.0, to.1 as i64],
        )?;
    }
    Ok(())
}

/// Deletes every row saved under `slot` (at any epoch).
pub(crate) fn drop_slot(db: &Connection, slot: &[u8]) -> Result<(), GroupError> {
    for (_, snap, _) in GROUP_TABLES {
        db.execute(
            &format!("DELETE FROM {snap} WHERE group_id = ?1"),
            params![slot],
        )?;
    }
    db.execute(
        "DELETE FROM kith_snap_encryption_keys WHERE group_id = ?1",
        params![slot],
    )?;
    Ok(())
}

/// Whether a snapshot of the group at `epoch` exists.
pub(crate) fn has_snapshot(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
) -> Result<bool, GroupError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM kith_snap_group_data WHERE group_id = ?1 AND snap_epoch = ?2 LIMIT 1",
            params![group.0, epoch as i64],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Puts the group's openmls rows back as they were in the snapshot at `epoch`, and forgets
/// everything the engine recorded about later epochs of the abandoned branch.
pub(crate) fn restore(db: &Connection, group: &GroupId, epoch: u64) -> Result<(), GroupError> {
    load_rows(db, group, &group.0, epoch)?;
    super::past_membership::forget_if_off_chain(db, group, Some(epoch))?;
    let e = epoch as i64;
    // The chain changed from `epoch` on: commits re-sent to a peer before are not the ones
    // it now needs, so anti-entropy may send again (found by the simulator).
    db.execute(
        "DELETE FROM kith_resent WHERE group_id = ?1",
        params![group.0],
    )?;
    for sql in [
        "DELETE FROM kith_epochs WHERE group_id = ?1 AND epoch > ?2",
        "DELETE FROM kith_commits WHERE group_id = ?1 AND parent_epoch >= ?2",
    ] {
        db.execute(sql, params![group.0, e])?;
    }
    for (_, snap, _) in GROUP_TABLES {
        db.execute(
            &format!("DELETE FROM {snap} WHERE group_id = ?1 AND snap_epoch >= ?2"),
            params![group.0, e],
        )?;
    }
    db.execute(
        "DELETE FROM kith_snap_encryption_keys WHERE group_id = ?1 AND snap_epoch >= ?2",
        params![group.0, e],
    )?;
    Ok(())
}

/// Deletes the group's snapshot at `epoch` (before a new one is taken there).
fn drop_snapshot(db: &Connection, group: &GroupId, epoch: u64) -> Result<(), GroupError> {
    for (_, snap, _) in GROUP_TABLES {
        db.execute(
            &format!("DELETE FROM {snap} WHERE group_id = ?1 AND snap_epoch = ?2"),
            params![group.0, epoch as i64],
        )?;
    }
    db.execute(
        "DELETE FROM kith_snap_encryption_keys WHERE group_id = ?1 AND snap_epoch = ?2",
        params![group.0, epoch as i64],
    )?;
    Ok(())
}

/// Forgets the group's snapshots taken at epochs before `oldest` (part of `store::prune`).
pub(crate) fn prune(db: &Connection, group: &GroupId, oldest: i64) -> Result<(), GroupError> {
    for (_, snap, _) in GROUP_TABLES {
        db.execute(
            &format!("DELETE FROM {snap} WHERE group_id = ?1 AND snap_epoch < ?2"),
            params![group.0, oldest],
        )?;
    }
    db.execute(
        "DELETE FROM kith_snap_encryption_keys WHERE group_id = ?1 AND snap_epoch < ?2",
        params![group.0, oldest],
    )?;
    Ok(())
}
