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
//!
//! One adder can add a device twice into the same epoch *number* on two branches: it adds
//! it on parent 11, loses a fork below, rolls back and adds it again on the winning 11
//! (seed 12737). Both frames then name the same group, epoch and signer, so each frame
//! also names the new epoch's confirmed transcript hash (RFC 9420 §8.2: it covers the add
//! commit), which the device reads from its Welcome, and only the frame whose transcript is
//! the device's own is filled in.
use kith_crypto::frame::FrameKind;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use kith_crypto::mls::{verify_control, DeviceSigningKey};

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
    /// The confirmed transcript hash of `epoch` (it names the add commit); empty in frames
    /// from before it was carried, which match any transcript.
    #[serde(default)]
    pub transcript: Vec<u8>,
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

    /// The frame `signer` sends for the add `hash` that produced `epoch` of `group`, whose
    /// confirmed transcript hash is `transcript`.
    fn signed(
        group: &GroupId,
        (epoch, transcript): (u64, &[u8]),
        hash: &[u8],
        signer: &DeviceSigningKey,
    ) -> Self {
        let mut frame = JoinHash {
            group: group.0.clone(),
            epoch,
            hash: hash.to_vec(),
            transcript: transcript.to_vec(),
            signer: signer.public_key().to_vec(),
            signature: Vec::new(),
        };
        frame.signature = signer.sign_control(CONTEXT, &frame.signed_bytes()).to_vec();
        frame
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
        if !self.transcript.is_empty() {
            bytes.extend((self.transcript.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&self.transcript);
        }
        bytes
    }

    /// Whether it names the add that produced the epoch whose confirmed transcript hash is
    /// `transcript` (`None`: not known, from a join recorded before transcripts were).
    fn names(&self, transcript: Option<&[u8]>) -> bool {
        match transcript {
            Some(ours) => self.transcript.is_empty() || self.transcript == ours,
            None => true,
        }
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
         CREATE TABLE IF NOT EXISTS kith_joins (
             group_id BLOB PRIMARY KEY,
             signer BLOB NOT NULL,
             transcript BLOB
         );
         CREATE TABLE IF NOT EXISTS kith_waiting_welcomes (
             id INTEGER PRIMARY KEY,
             group_id BLOB NOT NULL,
             epoch INTEGER NOT NULL,
             welcome BLOB NOT NULL UNIQUE
         );",
    )?;
    // Joins recorded before transcripts were kept their adder in `kith_adders`.
    let old: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kith_adders')",
        [],
        |r| r.get(0),
    )?;
    if old {
        db.execute_batch(
            "INSERT OR IGNORE INTO kith_joins (group_id, signer)
                 SELECT group_id, signer FROM kith_adders;
             DROP TABLE kith_adders;",
        )?;
    }
    Ok(())
}

/// The table of joins, for `forget_group`.
pub(crate) const JOINS: &str = "kith_joins";

/// How we joined a group: the adder whose Welcome we took and the confirmed transcript
/// hash of the epoch it put us into. Only the join hash from that adder names the commit
/// that added us (seed 6079: another adder's, for a competing add at the same epoch, was
/// filled in instead), and of its frames only the one with that transcript (seed 12737).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Join {
    /// The adder's leaf signature key.
    pub(crate) signer: Vec<u8>,
    /// The joined epoch's confirmed transcript hash (`None` for joins recorded before it
    /// was kept).
    pub(crate) transcript: Option<Vec<u8>>,
}

impl Join {
    /// Whether `frame` is the join hash of this join.
    fn is_named_by(&self, frame: &JoinHash) -> bool {
        frame.signer == self.signer && frame.names(self.transcript.as_deref())
    }
}

/// Records how we joined `group`.
pub(crate) fn record_join(db: &Connection, group: &GroupId, join: &Join) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_joins (group_id, signer, transcript) VALUES (?1, ?2, ?3)",
        params![group.0, join.signer, join.transcript],
    )?;
    Ok(())
}

fn recorded_join(db: &Connection, group: &GroupId) -> Result<Option<Join>, GroupError> {
    Ok(db
        .query_row(
            "SELECT signer, transcript FROM kith_joins WHERE group_id = ?1",
            params![group.0],
            |r| {
                Ok(Join {
                    signer: r.get(0)?,
                    transcript: r.get(1)?,
                })
            },
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

/// Keeps a join hash until its epoch is held (the oldest beyond [`MAX_PENDING`] go).
fn keep(db: &Connection, frame: &JoinHash) -> Result<(), GroupError> {
    db.execute(
        "INSERT INTO kith_join_hashes (group_id, frame) VALUES (?1, ?2)",
        params![frame.group, frame.encode()],
    )?;
    db.execute(
        "DELETE FROM kith_join_hashes WHERE id <= (SELECT MAX(id) FROM kith_join_hashes) - ?1",
        params![MAX_PENDING],
    )?;
    Ok(())
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
/// that is already waiting and that names `join` (the Welcome's sender and transcript).
pub(crate) fn fill_from_pending(
    db: &Connection,
    group: &GroupId,
    epoch: u64,
    join: &Join,
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
        .filter(|frame| frame.epoch == epoch && join.is_named_by(frame))
        .find_map(|frame| frame.verified_hash());
    Ok(())
}

impl GroupEngine {
    /// Tells each device in `added` the hash of the commit that added it into `epoch`,
    /// whose confirmed transcript hash is `transcript`.
    pub(crate) fn send_join_hash(
        &self,
        gid: &GroupId,
        (epoch, transcript): (u64, &[u8]),
        hash: &[u8],
        added: &[String],
        out: &mut Output,
    ) {
        let frame = JoinHash::signed(gid, (epoch, transcript), hash, &self.signer);
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
        keep(db, &frame)?;
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
    /// for the epoch we joined at that names our join (signed by the adder whose Welcome
    /// we took, for the transcript we joined with; after a join and on arrival). The frame
    /// is used up; the others stay (one may name the add of a competing Welcome still to
    /// come) until [`MAX_PENDING`] prunes them. True if it filled one in.
    pub(crate) fn apply_join_hashes(
        &self,
        db: &Connection,
        gid: &GroupId,
    ) -> Result<bool, GroupError> {
        if !super::control::holds_active(db, gid)? {
            return Ok(false);
        }
        let (Some(parent), Some(join)) = (
            super::lineage::unhashed_join(db, gid)?,
            recorded_join(db, gid)?,
        ) else {
            return Ok(false);
        };
        for (id, frame) in kept(db, gid)? {
            let Some(frame) = frame else {
                db.execute("DELETE FROM kith_join_hashes WHERE id = ?1", params![id])?;
                continue;
            };
            if frame.epoch != parent + 1 || !join.is_named_by(&frame) {
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
    use super::super::fork::CommitClass;
    use super::super::lineage::LineageEntry;
    use super::*;
    use rand::SeedableRng;

    fn signer(seed: u64) -> DeviceSigningKey {
        DeviceSigningKey::generate(&mut rand::rngs::StdRng::seed_from_u64(seed))
    }

    fn migrated() -> Connection {
        let db = Connection::open_in_memory().unwrap();
        migrate(&db).unwrap();
        db
    }

    /// A Welcome's lineage for epoch 12: its add, on parent 11, not yet hashed.
    fn unhashed_add() -> Lineage {
        Lineage {
            entries: vec![LineageEntry {
                parent: 11,
                class: CommitClass::AddOrContext,
                hash: None,
                pinned: false,
            }],
        }
    }

    fn filled(db: &Connection, group: &GroupId, join: &Join) -> Option<[u8; 32]> {
        let mut lineage = unhashed_add();
        fill_from_pending(db, group, 12, join, &mut lineage).unwrap();
        lineage.entries[0].hash
    }

    /// Seed 12737: one adder added the device into epoch 12 twice, on two branches (it
    /// rolled the first add back). Both frames name the same group, epoch and signer; the
    /// device takes the one whose transcript is that of the Welcome it opened, whichever
    /// came first.
    #[test]
    fn of_one_adders_two_adds_into_an_epoch_the_frame_for_our_transcript_is_filled_in() {
        let adder = signer(1);
        let group = GroupId(vec![7; 16]);
        let abandoned = JoinHash::signed(&group, (12, &[0xa; 32]), &[0xaa; 32], &adder);
        let kept = JoinHash::signed(&group, (12, &[0xb; 32]), &[0xbb; 32], &adder);
        for frames in [[&abandoned, &kept], [&kept, &abandoned]] {
            let db = migrated();
            for frame in frames {
                keep(&db, frame).unwrap();
            }
            let join = |transcript: u8| Join {
                signer: adder.public_key().to_vec(),
                transcript: Some(vec![transcript; 32]),
            };
            assert_eq!(filled(&db, &group, &join(0xb)), Some([0xbb; 32]));
            assert_eq!(filled(&db, &group, &join(0xa)), Some([0xaa; 32]));
            assert_eq!(filled(&db, &group, &join(0xc)), None, "no frame names it");
        }
    }

    /// Another adder's frame, or one whose signature fails, is never filled in.
    #[test]
    fn a_frame_from_another_adder_or_with_a_bad_signature_is_not_filled_in() {
        let (adder, other) = (signer(1), signer(2));
        let group = GroupId(vec![7; 16]);
        let mut forged = JoinHash::signed(&group, (12, &[0xb; 32]), &[0xbb; 32], &adder);
        forged.hash = vec![0xcc; 32];
        let db = migrated();
        keep(
            &db,
            &JoinHash::signed(&group, (12, &[0xb; 32]), &[0xdd; 32], &other),
        )
        .unwrap();
        keep(&db, &forged).unwrap();
        let join = Join {
            signer: adder.public_key().to_vec(),
            transcript: Some(vec![0xb; 32]),
        };
        assert_eq!(filled(&db, &group, &join), None);
    }

    /// A frame from before transcripts were carried still verifies and names any join; a
    /// join recorded before them (in `kith_adders`) is moved over and takes any frame of
    /// its adder.
    #[test]
    fn frames_and_joins_from_before_transcripts_still_match() {
        let adder = signer(1);
        let group = GroupId(vec![7; 16]);
        let mut legacy = JoinHash::signed(&group, (12, &[]), &[0xee; 32], &adder);
        assert!(legacy.transcript.is_empty());
        let mut wire: serde_json::Value = serde_json::from_slice(&legacy.encode()).unwrap();
        wire.as_object_mut().unwrap().remove("transcript");
        legacy = JoinHash::decode(&serde_json::to_vec(&wire).unwrap()).expect("decodes");
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE kith_adders (group_id BLOB PRIMARY KEY, signer BLOB NOT NULL);",
        )
        .unwrap();
        db.execute(
            "INSERT INTO kith_adders (group_id, signer) VALUES (?1, ?2)",
            params![group.0, adder.public_key().to_vec()],
        )
        .unwrap();
        migrate(&db).unwrap();
        let moved = recorded_join(&db, &group).unwrap().expect("moved over");
        assert_eq!(moved.transcript, None);
        keep(&db, &legacy).unwrap();
        assert_eq!(filled(&db, &group, &moved), Some([0xee; 32]));
        let new_join = Join {
            transcript: Some(vec![0xb; 32]),
            ..moved
        };
        assert_eq!(filled(&db, &group, &new_join), Some([0xee; 32]));
    }

    #[test]
    fn codec_round_trips_and_refuses_other_control_frames() {
        let frame = JoinHash {
            group: vec![1, 2],
            epoch: 4,
            hash: vec![3; 32],
            transcript: vec![6; 32],
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
