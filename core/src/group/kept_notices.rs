//! Kept fork notices: a notice is not a one-shot event (simulator seed 6476).
//!
//! A notice can arrive while we hold the very commit it names (nothing to do), and a
//! better commit on its parent can move us off that commit later; the notice is not sent
//! again. So every trusted notice whose parent we can still roll back to is kept (also
//! while a commit has tentatively removed us), and after each receive that resolved a fork
//! the notices kept for that group are judged again, as if they had just arrived.
use rusqlite::{params, Connection};

use super::errors::GroupError;
use super::fork_notice::ForkNotice;
use super::store;
use super::{Event, GroupEngine, GroupId, Output};

/// Creates the table of kept notices (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_kept_notices (
             group_id BLOB NOT NULL,
             parent_epoch INTEGER NOT NULL,
             signer TEXT NOT NULL,
             notice BLOB NOT NULL,
             PRIMARY KEY (group_id, parent_epoch, signer)
         );",
    )?;
    Ok(())
}

/// The table, for `forget_group`.
pub(crate) const TABLE: &str = "kith_kept_notices";

/// The most notices kept per group (those of the latest parents win).
const MAX_KEPT_NOTICES: i64 = 16;

/// Keeps a notice whose parent we can roll back to, one per parent and signer.
pub(crate) fn keep(
    db: &Connection,
    gid: &GroupId,
    signer: &str,
    notice: &ForkNotice,
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_kept_notices (group_id, parent_epoch, signer, notice)
         VALUES (?1, ?2, ?3, ?4)",
        params![gid.0, notice.parent as i64, signer, notice.encode()],
    )?;
    db.execute(
        "DELETE FROM kith_kept_notices WHERE group_id = ?1 AND rowid NOT IN
             (SELECT rowid FROM kith_kept_notices WHERE group_id = ?1
              ORDER BY parent_epoch DESC LIMIT ?2)",
        params![gid.0, MAX_KEPT_NOTICES],
    )?;
    Ok(())
}

/// The kept notices of `gid`, oldest parent first.
fn kept(db: &Connection, gid: &GroupId) -> Result<Vec<(u64, Vec<u8>)>, GroupError> {
    let mut stmt = db.prepare(
        "SELECT parent_epoch, notice FROM kith_kept_notices WHERE group_id = ?1
         ORDER BY parent_epoch, signer",
    )?;
    let rows = stmt.query_map(params![gid.0], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn forget_kept(db: &Connection, gid: &GroupId, parent: u64) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_kept_notices WHERE group_id = ?1 AND parent_epoch = ?2",
        params![gid.0, parent as i64],
    )?;
    Ok(())
}

impl GroupEngine {
    /// After each receive, judges again what waited on the groups it changed. Once per
    /// group a fork moved to another commit: the notices kept for it are judged
    /// again (`judge_kept_notices`), then the Welcomes that were no better
    /// (`judge_welcomes_after_fork`), then devices we added on the branch we left are told
    /// (`announce_welcomes_left_behind`). A group whose chain only grew (a merge, a removal of
    /// us) has its Welcomes judged again if they wait on our unhashed join
    /// (`judge_welcomes_after_growth`).
    pub(crate) fn judge_again_after_receive(
        &self,
        db: &Connection,
        now: u64,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let mut forked: Vec<GroupId> = Vec::new();
        let mut grown: Vec<GroupId> = Vec::new();
        for event in &out.events {
            match event {
                Event::ForkResolved { group, .. } if !forked.contains(group) => {
                    forked.push(group.clone())
                }
                Event::EpochChanged { group, .. } | Event::Removed { group }
                    if !grown.contains(group) =>
                {
                    grown.push(group.clone())
                }
                _ => {}
            }
        }
        for gid in grown.iter().filter(|gid| !forked.contains(gid)) {
            self.judge_welcomes_after_growth(db, gid, out)?;
        }
        for gid in forked {
            if store::is_member_group(db, &gid)? {
                self.judge_kept_notices(db, now, &gid, out)?;
            }
            if store::is_member_group(db, &gid)? {
                self.judge_welcomes_after_fork(db, &gid, out)?;
            }
            self.announce_welcomes_left_behind(db, &gid, out)?;
        }
        Ok(())
    }

    /// Judges again the notices kept for `gid`, after a fork moved us to another commit
    /// on some parent: one that named the commit we held there may now be one we must
    /// follow. Notices whose parent we can no longer roll back to are dropped.
    pub(crate) fn judge_kept_notices(
        &self,
        db: &Connection,
        now: u64,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        for (parent, bytes) in kept(db, gid)? {
            let notice = ForkNotice::decode(&bytes);
            match notice {
                Some(notice) if super::snapshot::has_snapshot(db, gid, parent)? => {
                    self.receive_fork_notice(db, now, notice, out)?
                }
                _ => forget_kept(db, gid, parent)?,
            }
        }
        Ok(())
    }
}
