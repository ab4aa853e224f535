//! Join hashes: an adder tells each device it added the hash of the commit that added it.
//!
//! A Welcome's lineage (`lineage.rs`) lists the adder's chain, but its last entry — the add
//! itself — has no hash: the GroupInfo is signed before the commit is framed. So a device
//! knew every commit of its chain but the one that put it there, and could not compare a
//! later Welcome whose chain holds a *different* commit on that parent (seed 129: a device
//! added by a commit that lost fork choice ignored the Welcome that re-added it on the
//! winning chain as "no better", and stayed on the dead branch). Right after the Welcome,
//! the adder sends a signed `JoinHash` control frame with the commit's hash; the device
//! fills it into its lineage. The frame may arrive before the Welcome, so it is kept until
//! the device holds that epoch (at most [`MAX_PENDING`] frames in all); a Welcome that
//! finds its join hash already waiting is judged with it (`fill_from_pending`). A Welcome
//! that comes first and is ignored as no better than our state — judged without its hash —
//! waits (at most [`MAX_WAITING_WELCOMES`]) and is judged again when its hash arrives
//! (seed 486: the device stayed on the branch its first adder had lost).
use kith_crypto::frame::FrameKind;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use kith_crypto::mls::verify_control;

use super::errors::{unless_rolled_back, GroupError};
use super::lineage::Lineage;
use super::{GroupEngine, GroupId, Outgoing, Output};

/// The largest join-hash frame accepted.
pub const MAX_JOIN_HASH_LEN: usize = 4 * 1024;

/// The most join-hash frames kept while their Welcome has not been applied.
pub const MAX_PENDING: i64 = 256;

/// The most Welcomes kept to be judged again when their join hash arrives.
pub const MAX_WAITING_WELCOMES: i64 = 64;

const CONTEXT: &str = "join-hash";

/// The payload of a `FrameKind::Control` frame: "the commit that put you into `epoch` of
/// `group` has this hash".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinHash {
    /// The group id.
    pub group: Vec<u8>,
    /// The epoch the add created (the Welcome's epoch).
    pub epoch: u64,
    /// SHA-256 of the add commit's `MLSMessage` bytes (32 bytes).
    pub hash: Vec<u8>,
    /// The adder's leaf signature key (32 bytes).
    pub signer: Vec<u8>,
    /// Ed25519 over the other fields (`kith_crypto::mls::verify_control`).
    pub signature: Vec<u8>,
}

impl JoinHash {
    /// The wire form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a join hash always serializes")
    }

    /// Parses bytes from the network; `None` if they are not a join hash.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        super::control::decode_capped(bytes, MAX_JOIN_HASH_LEN)
    }

    /// The hash it names, if its signature verifies under its own signer key (whose owner
    /// the caller checks).
    fn verified_hash(&self) -> Option<[u8; 32]> {
        let signed = self.signed_bytes();
        verify_control(&self.signer, CONTEXT, &signed, &self.signature)
            .then(|| <[u8; 32]>::try_from(self.hash.as_slice()).ok())
            .flatten()
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = (self.group.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.group);
        bytes.extend(self.epoch.to_be_bytes());
        bytes.extend((self.hash.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&self.hash);
        bytes
    }
}

/// Creates the table of join hashes not yet applied (idempotent). It is not one of the
/// group's tables: a frame that arrives before its Welcome must outlive the join.
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_join_hashes (
             id INTEGER PRIMARY KEY,
             group_id BLOB NOT NULL,
             frame BLOB NOT NULL
         );
         CREATE TABLE IF NOT EXISTS kith_adders (
             group_id BLOB PRIMARY KEY,
             signer BLOB NOT NULL
         );
         CREATE TABLE IF NOT EXISTS kith_waiting_welcomes (
             id INTEGER PRIMARY KEY,
             group_id BLOB NOT NULL,
             epoch INTEGER NOT NULL,
             welcome BLOB NOT NULL UNIQUE
         );",
    )?;
    Ok(())
}

/// The table of adders, for `forget_group`.
pub(crate) const ADDERS: &str = "kith_adders";

/// Records the leaf key of the adder whose Welcome we joined with: only its join hash
/// names the commit that added us (seed 6079: another adder's, for a competing add at
/// the same epoch, was filled in instead).
pub(crate) fn record_adder(
    db: &Connection,
    group: &GroupId,
    signer: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_adders (group_id, signer) VALUES (?1, ?2)",
        params![group.0, signer],
    )?;
    Ok(())
}

fn adder(db: &Connection, group: &GroupId) -> Result<Option<Vec<u8>>, GroupError> {
    Ok(db
        .query_row(
            "SELECT signer FROM kith_adders WHERE group_id = ?1",
            params![group.0],
            |r| r.get(0),
        )
        .optional()?)
}

/// Keeps a Welcome (its `MLSMessage` bytes) for `epoch` of `group` that we ignored before
/// its join hash came, to judge it again then.
pub(crate) fn keep_welcome(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
    welcome: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR IGNORE INTO kith_waiting_welcomes (group_id, epoch, welcome)
         VALUES (?1, ?2, ?3)",
        params![group.0, epoch as i64, welcome],
    )?;
    db.execute(
        "DELETE FROM kith_waiting_welcomes
         WHERE id <= (SELECT MAX(id) FROM kith_waiting_welcomes) - ?1",
        params![MAX_WAITING_WELCOMES],
    )?;
    Ok(())
}

/// Takes (removes and returns) every Welcome waiting for `group`.
fn take_all_waiting_welcomes(db: &Connection, group: &GroupId) -> Result<Vec<Vec<u8>>, GroupError> {
    let mut stmt =
        db.prepare("DELETE FROM kith_waiting_welcomes WHERE group_id = ?1 RETURNING welcome")?;
    let rows = stmt.query_map(params![group.0], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Takes (removes and returns) the Welcomes waiting for a join hash for `epoch` of `group`.
fn take_waiting_welcomes(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
) -> Result<Vec<Vec<u8>>, GroupError> {
    let mut stmt = db.prepare(
        "DELETE FROM kith_waiting_welcomes WHERE group_id = ?1 AND epoch = ?2 RETURNING welcome",
    )?;
    let rows = stmt.query_map(params![group.0, epoch as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The join hashes kept for `group`, with their row ids (`None`: a row that no longer
/// decodes).
fn kept(db: &Connection, group: &GroupId) -> Result<Vec<(i64, Option<JoinHash>)>, GroupError> {
    let mut stmt = db.prepare("SELECT id, frame FROM kith_join_hashes WHERE group_id = ?1")?;
    let rows = stmt.query_map(params![group.0], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut kept = Vec::new();
    for row in rows {
        let (id, bytes) = row?;
        kept.push((id, JoinHash::decode(&bytes)));
    }
    Ok(kept)
}

/// Completes a Welcome's lineage with the hash of its add, from a join hash for `epoch`
/// that is already waiting and that the Welcome's sender (leaf key `sender`) signed.
pub(crate) fn fill_from_pending(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
    sender: &[u8],
    lineage: &mut Lineage,
) -> Result<(), GroupError> {
    let Some(last) = lineage.entries.last_mut() else {
        return Ok(());
    };
    if last.hash.is_some() || last.parent + 1 != epoch {
        return Ok(());
    }
    last.hash = kept(db, group)?
        .into_iter()
        .filter_map(|(_, frame)| frame)
        .filter(|frame| frame.epoch == epoch && frame.signer == sender)
        .find_map(|frame| frame.verified_hash());
    Ok(())
}

impl GroupEngine {
    /// Tells each device in `added` the hash of the commit that added it into `epoch`.
    pub(crate) fn send_join_hash(
        &self,
        gid: &GroupId,
        epoch: u64,
        hash: &[u8],
        added: &[String],
        out: &mut Output,
    ) {
        let mut frame = JoinHash {
            group: gid.0.clone(),
            epoch,
            hash: hash.to_vec(),
            signer: self.signer.public_key().to_vec(),
            signature: Vec::new(),
        };
        frame.signature = self
            .signer
            .sign_control(CONTEXT, &frame.signed_bytes())
            .to_vec();
        for address in added {
            out.outgoing.push(Outgoing::to_device(
                address,
                FrameKind::Control,
                frame.encode(),
            ));
        }
    }

    /// A join hash arrived: keep it, judge again the Welcomes that waited for it, and
    /// apply it if we already hold its epoch.
    pub(crate) fn receive_join_hash(
        &self,
        db: &Connection,
        frame: JoinHash,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        db.execute(
            "INSERT INTO kith_join_hashes (group_id, frame) VALUES (?1, ?2)",
            params![frame.group, frame.encode()],
        )?;
        db.execute(
            "DELETE FROM kith_join_hashes WHERE id <= (SELECT MAX(id) FROM kith_join_hashes) - ?1",
            params![MAX_PENDING],
        )?;
        let gid = GroupId(frame.group);
        // Ours first: a waiting Welcome may have tied with our own unhashed join, and if
        // this fills it every waiting Welcome is judged again (seed 9635: one for a later
        // epoch named another commit on the parent of our join).
        let waiting = match self.apply_join_hashes(db, &gid)? {
            true => take_all_waiting_welcomes(db, &gid)?,
            false => take_waiting_welcomes(db, &gid, frame.epoch)?,
        };
        self.judge_waiting_welcomes(db, waiting, out)?;
        // A Welcome taken just now may have left our new lineage unhashed.
        self.apply_join_hashes(db, &gid)?;
        Ok(())
    }

    /// After a fork moved us to another branch of `gid`: a Welcome ignored as no better
    /// than the branch we left may be better than this one.
    pub(crate) fn judge_welcomes_after_fork(
        &self,
        db: &Connection,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let waiting = take_all_waiting_welcomes(db, gid)?;
        self.judge_waiting_welcomes(db, waiting, out)
    }

    /// After our chain of `gid` grew by a commit (merged, or one that removed us) while our
    /// join is unhashed: a Welcome that waited because its chain names another commit on
    /// our join's parent may now agree with ours on a later commit (seed 1932: a device
    /// removed and re-added before either join hash came waited for its first join's hash
    /// while removed, and the re-adding Welcome named the removal; it never came back).
    pub(crate) fn judge_welcomes_after_growth(
        &self,
        db: &Connection,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        if !super::store::is_member_group(db, gid)?
            || super::lineage::unhashed_join(db, gid)?.is_none()
        {
            return Ok(());
        }
        self.judge_welcomes_after_fork(db, gid, out)
    }

    /// Judges waiting Welcomes again; one still no better waits again.
    fn judge_waiting_welcomes(
        &self,
        db: &Connection,
        waiting: Vec<Vec<u8>>,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        for welcome in waiting {
            tracing::debug!("judging a waiting Welcome again");
            // A Welcome refused now (a leaf whose certificate fails) is dropped; the join
            // hash that came with this frame is still kept.
            match self.receive_welcome(db, &welcome, out) {
                Err(error) if error.ends_the_call() => return Err(error),
                Err(error) => {
                    let error = unless_rolled_back(db, error)?;
                    tracing::warn!(%error, "dropping a waiting Welcome");
                }
                Ok(()) => {}
            }
        }
        Ok(())
    }

    /// Fills the hash of the commit that added us into our lineage, from a kept join hash
    /// for the epoch we joined at, signed by the adder whose Welcome we took (after a join
    /// and on arrival). The frame is used up; the others stay (one may name the add of a
    /// competing Welcome still to come) until [`MAX_PENDING`] prunes them. True if it
    /// filled one in.
    pub(crate) fn apply_join_hashes(
        &self,
        db: &Connection,
        gid: &GroupId,
    ) -> Result<bool, GroupError> {
        if !super::control::holds_active(db, gid)? {
            return Ok(false);
        }
        let (Some(parent), Some(adder)) =
            (super::lineage::unhashed_join(db, gid)?, adder(db, gid)?)
        else {
            return Ok(false);
        };
        for (id, frame) in kept(db, gid)? {
            let Some(frame) = frame else {
                db.execute("DELETE FROM kith_join_hashes WHERE id = ?1", params![id])?;
                continue;
            };
            if frame.epoch != parent + 1 || frame.signer != adder {
                continue;
            }
            if let Some(hash) = frame.verified_hash() {
                db.execute("DELETE FROM kith_join_hashes WHERE id = ?1", params![id])?;
                super::lineage::set_join_hash(db, gid, parent, hash)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_and_refuses_other_control_frames() {
        let frame = JoinHash {
            group: vec![1, 2],
            epoch: 4,
            hash: vec![3; 32],
            signer: vec![4; 32],
            signature: vec![5; 64],
        };
        assert_eq!(JoinHash::decode(&frame.encode()), Some(frame));
        let lost = super::super::BranchLost {
            group: vec![1],
            epoch: 2,
            epoch_id: vec![0; 32],
            certificate: Vec::new(),
            signer: vec![0; 32],
            signature: vec![0; 64],
        };
        assert_eq!(JoinHash::decode(&lost.encode()), None);
        assert_eq!(JoinHash::decode(&vec![b' '; MAX_JOIN_HASH_LEN + 1]), None);
    }
}
