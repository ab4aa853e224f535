//! Our own commits, remembered after a fork takes us off the branch they are on.
//!
//! A commit we sent lives on in the network after we roll back past it. If a fork notice
//! later brings us back to the very epoch it was made on, the commit the notice's chain
//! holds there may lose fork choice to ours: every member that sees both keeps ours, and
//! we cannot follow it — openmls cannot process a commit of our own, and the state it led
//! to is gone (seed 9126: a device followed a notice past its own earlier self-update,
//! which the rest of the group then chose, and it stayed alone on the notice's branch). So
//! each commit we make is remembered with its parent epoch's id ([`super::repair::
//! DETECT_EPOCHS`] long), and merging a commit there that ours beats means our branch is
//! lost: we ask to be re-added.
use rusqlite::{params, Connection};

use super::errors::GroupError;
use super::fork::{beats, CommitClass, CommitRank};
use super::store::{self, LoggedCommit};
use super::{GroupEngine, GroupId, Output};

/// The table, for `forget_group`.
pub(crate) const TABLE: &str = "kith_own_commits";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kith_own_commits (
    group_id BLOB NOT NULL,
    parent_epoch INTEGER NOT NULL,
    parent_epoch_id BLOB NOT NULL,
    class INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (group_id, hash)
);
";

/// Creates the table (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// Remembers a commit we made on `parent`, whose epoch id is `parent_id`.
pub(crate) fn remember(
    db: &Connection,
    group: &GroupId,
    parent: u64,
    parent_id: &[u8; 32],
    commit: &CommitRank,
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR IGNORE INTO kith_own_commits
         (group_id, parent_epoch, parent_epoch_id, class, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            group.0,
            parent as i64,
            parent_id.to_vec(),
            commit.class.to_i64(),
            commit.hash
        ],
    )?;
    Ok(())
}

/// Whether a commit of ours on `parent` (epoch id `parent_id`) beats `theirs`.
pub(crate) fn ours_beats(
    db: &Connection,
    group: &GroupId,
    parent: u64,
    parent_id: &[u8; 32],
    theirs: &CommitRank,
) -> Result<bool, GroupError> {
    let mut stmt = db.prepare(
        "SELECT class, hash FROM kith_own_commits
         WHERE group_id = ?1 AND parent_epoch = ?2 AND parent_epoch_id = ?3",
    )?;
    let rows = stmt.query_map(params![group.0, parent as i64, parent_id.to_vec()], |r| {
        Ok(CommitRank {
            class: CommitClass::from_i64(r.get(0)?),
            hash: r.get(1)?,
        })
    })?;
    for ours in rows {
        let ours = ours?;
        if ours.hash != theirs.hash && beats(&ours, theirs) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl GroupEngine {
    /// We are about to merge `theirs` on `parent`: if a commit of ours there beats it (and
    /// no fork notice pinned theirs), the group keeps ours, a branch we cannot follow, so
    /// we ask to be re-added.
    pub(crate) fn check_own_commit_beats(
        &self,
        db: &Connection,
        gid: &GroupId,
        parent: u64,
        theirs: &LoggedCommit,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let Some((parent_id, _)) = store::epoch_record(db, gid, parent)? else {
            return Ok(());
        };
        let rank = CommitRank {
            class: CommitClass::from_i64(theirs.class),
            hash: theirs.hash.clone(),
        };
        let pinned = super::fork_notice::pinned(db, gid, parent)?.is_some_and(|p| p == theirs.hash);
        if pinned || !ours_beats(db, gid, parent, &parent_id, &rank)? {
            return Ok(());
        }
        tracing::debug!(parent, "merging a commit that our own earlier commit beats");
        self.request_rejoin(db, gid, parent, &[], out)
    }
}

/// Forgets those made on parents older than `oldest`.
pub(crate) fn prune(db: &Connection, group: &GroupId, oldest: i64) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_own_commits WHERE group_id = ?1 AND parent_epoch < ?2",
        params![group.0, oldest],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_better_commit_of_ours_on_the_same_epoch_counts() {
        let db = Connection::open_in_memory().unwrap();
        migrate(&db).unwrap();
        let g = GroupId(vec![1]);
        let rank = |class, byte| CommitRank {
            class,
            hash: vec![byte; 32],
        };
        remember(&db, &g, 10, &[7; 32], &rank(CommitClass::SelfUpdate, 5)).unwrap();
        let higher = rank(CommitClass::SelfUpdate, 9);
        assert!(ours_beats(&db, &g, 10, &[7; 32], &higher).unwrap());
        // Not on another epoch id or parent, not against a better commit or itself.
        assert!(!ours_beats(&db, &g, 10, &[8; 32], &higher).unwrap());
        assert!(!ours_beats(&db, &g, 11, &[7; 32], &higher).unwrap());
        let removal = rank(CommitClass::Removal, 9);
        assert!(!ours_beats(&db, &g, 10, &[7; 32], &removal).unwrap());
        let same = rank(CommitClass::SelfUpdate, 5);
        assert!(!ours_beats(&db, &g, 10, &[7; 32], &same).unwrap());
        prune(&db, &g, 11).unwrap();
        assert!(!ours_beats(&db, &g, 10, &[7; 32], &higher).unwrap());
    }
}
