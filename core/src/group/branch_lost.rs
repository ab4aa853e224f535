//! Branch lost: telling devices we added on a branch that lost fork choice that it is gone.
//!
//! A device added after the fork point on a branch that loses is on that branch alone: the
//! commit that beat it was sent before the device joined, and nobody on the winning branch
//! counts it a member. If its adder stays an admin on the winning branch, the add is
//! re-issued there and the new Welcome (with a better lineage, `lineage.rs`) moves the device
//! over. If the adder itself is removed by the winning commit, nothing would ever reach the
//! device (found by the simulator, seed 2176: an admin offline for long removed everyone,
//! and the devices added meanwhile kept a group of their own). So every adder remembers the
//! Welcomes it sent — (device, epoch, epoch id) — and when a commit removes it, tells each
//! device it added after that commit's parent, or into an epoch whose id its chain no
//! longer holds (seed 373): a `BranchLost` control frame, signed with the
//! adder's leaf key, sealed to the device's key. The device drops the group if it is still
//! on that branch (it holds that epoch id) and the signer is an admin there; otherwise (it
//! has moved to the winning branch meanwhile) the frame changes nothing — but it is kept
//! (at most [`MAX_KEPT_BRANCH_LOST`] in all): it may come before the Welcome it names
//! (seed 6071: the device then joined the lost branch and stayed there alone), so every
//! Welcome taken is checked against the kept frames. A frame believed is kept too: a
//! duplicate of the Welcome it names must not take the device back (seed 446).
use kith_crypto::frame::FrameKind;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::commands::load;
use super::errors::GroupError;
use super::store;
use super::{Event, GroupEngine, GroupId, Outgoing, Output};

/// The largest branch-lost frame accepted.
pub const MAX_BRANCH_LOST_LEN: usize = 4 * 1024;

/// The most branch-lost frames kept (for a branch we are not on yet, or one we left).
pub(crate) const MAX_KEPT_BRANCH_LOST: i64 = 64;

const CONTEXT: &str = "branch-lost";

/// The payload of a `FrameKind::Control` frame from an adder that lost its branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchLost {
    /// The group id.
    pub group: Vec<u8>,
    /// The epoch the adder's Welcome put the device in.
    pub epoch: u64,
    /// That epoch's id (32 bytes).
    pub epoch_id: Vec<u8>,
    /// The adder's device certificate (`DeviceCertificate::encode`), which names `signer`:
    /// a device whose branch removed the adder still knows it as an admin by it (seed 6229).
    #[serde(default, with = "crate::content::b64")]
    pub certificate: Vec<u8>,
    /// The adder's leaf signature key (32 bytes).
    pub signer: Vec<u8>,
    /// Ed25519 over the group, epoch and epoch id (`kith_crypto::mls::verify_control`).
    pub signature: Vec<u8>,
}

impl BranchLost {
    /// The wire form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a branch-lost frame always serializes")
    }

    /// Parses bytes from the network; `None` if they are not a branch-lost frame.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        super::control::decode_capped(bytes, MAX_BRANCH_LOST_LEN)
    }

    fn signed_bytes(group: &[u8], epoch: u64, epoch_id: &[u8]) -> Vec<u8> {
        let mut bytes = (group.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(group);
        bytes.extend(epoch.to_be_bytes());
        bytes.extend_from_slice(epoch_id);
        bytes
    }
}

/// Creates the table of Welcomes sent (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_welcomed (
             group_id BLOB NOT NULL,
             address TEXT NOT NULL,
             epoch INTEGER NOT NULL,
             epoch_id BLOB NOT NULL,
             PRIMARY KEY (group_id, address, epoch)
         );
         CREATE TABLE IF NOT EXISTS kith_branch_lost_kept (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             group_id BLOB NOT NULL,
             frame BLOB NOT NULL
         );",
    )?;
    Ok(())
}

/// The table, for `forget_group`.
pub(crate) const TABLE: &str = "kith_welcomed";

/// Remembers that our Welcome put `address` into `epoch` of the group.
pub(crate) fn welcomed(
    db: &Connection,
    group: &GroupId,
    address: &str,
    epoch: u64,
) -> Result<(), GroupError> {
    let Some((epoch_id, _)) = store::epoch_record(db, group, epoch)? else {
        return Ok(());
    };
    db.execute(
        "INSERT OR REPLACE INTO kith_welcomed (group_id, address, epoch, epoch_id)
         VALUES (?1, ?2, ?3, ?4)",
        params![group.0, address, epoch as i64, &epoch_id[..]],
    )?;
    Ok(())
}

/// A Welcome we sent: the device, the epoch it put it in, that epoch's id.
type Welcomed = (String, u64, Vec<u8>);

/// Every Welcome we remember sending for `gid`, oldest epoch first.
fn welcomed_rows(db: &Connection, gid: &GroupId) -> Result<Vec<Welcomed>, GroupError> {
    let mut stmt = db.prepare(
        "SELECT address, epoch, epoch_id FROM kith_welcomed WHERE group_id = ?1 ORDER BY epoch",
    )?;
    let rows = stmt.query_map(params![gid.0], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Our chain holds another id for `epoch` than `epoch_id` (`None`: we hold no record of
/// it, pruned or never reached on this chain).
pub(crate) fn other_id_held(
    db: &Connection,
    gid: &GroupId,
    epoch: u64,
    epoch_id: &[u8],
) -> Result<Option<bool>, GroupError> {
    Ok(store::epoch_record(db, gid, epoch)?.map(|(id, _)| id[..] != *epoch_id))
}

impl GroupEngine {
    /// A commit on `parent` removes us: tell every device we Welcomed into a later epoch
    /// that its branch is lost, and every device we Welcomed into an earlier epoch whose
    /// id our chain no longer holds (seed 373: an admin added a device on its branch,
    /// then a fork notice from an earlier parent took it to a branch where it is removed;
    /// the device's epoch was not after the removal's parent, and it stayed alone). Those
    /// Welcomes are forgotten.
    pub(crate) fn announce_branch_lost(
        &self,
        db: &Connection,
        gid: &GroupId,
        parent: u64,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        for (address, epoch, epoch_id) in welcomed_rows(db, gid)? {
            // An epoch whose record was pruned is not judged: it may be on our chain.
            if epoch > parent || other_id_held(db, gid, epoch, &epoch_id)? == Some(true) {
                self.send_branch_lost(db, gid, address, epoch, epoch_id, out)?;
            }
        }
        Ok(())
    }

    /// A fork moved us to another branch of `gid` and we are still a member: tell every
    /// device we Welcomed into an epoch of the branch we left that its branch is lost
    /// (seed 1788: an admin added a device, then rolled back to a removal that left it no
    /// admin, so its add waited, and the device stayed on the abandoned branch, alone).
    /// Members here too (fresh 10506: a device removed and re-added on the branch we left
    /// held that branch's state; as a member it was not told): one that holds that epoch
    /// drops it and asks to be re-added; one that moved on keeps the frame, nothing more.
    pub(crate) fn announce_welcomes_left_behind(
        &self,
        db: &Connection,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        if !store::is_member_group(db, gid)? || super::removal::removed_parent(db, gid)?.is_some() {
            return Ok(());
        }
        let group = load(&self.provider(db), gid)?;
        let current = group.epoch().as_u64();
        for (address, epoch, epoch_id) in welcomed_rows(db, gid)? {
            let left = match other_id_held(db, gid, epoch, &epoch_id)? {
                Some(other) => other,
                None => epoch > current,
            };
            if left {
                self.send_branch_lost(db, gid, address, epoch, epoch_id, out)?;
            }
        }
        Ok(())
    }

    /// Tells `address` that the epoch our Welcome put it in is on a lost branch, and
    /// forgets that Welcome.
    pub(crate) fn send_branch_lost(
        &self,
        db: &Connection,
        gid: &GroupId,
        address: String,
        epoch: u64,
        epoch_id: Vec<u8>,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        forget_welcomed(db, gid, &address, epoch)?;
        let signature = self
            .signer
            .sign_control(CONTEXT, &BranchLost::signed_bytes(&gid.0, epoch, &epoch_id));
        let frame = BranchLost {
            group: gid.0.clone(),
            epoch,
            epoch_id,
            certificate: self.certificate.encode(),
            signer: self.signer.public_key().to_vec(),
            signature: signature.to_vec(),
        };
        out.outgoing.push(Outgoing::to_device(
            &address,
            FrameKind::Control,
            frame.encode(),
        ));
        Ok(())
    }

    /// A branch-lost frame arrived: drop the group if we are still on that branch (also
    /// while tentatively removed) and the signer is an admin there whose signature verifies.
    pub(crate) fn receive_branch_lost(
        &self,
        db: &Connection,
        lost: BranchLost,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let gid = GroupId(lost.group.clone());
        // Also while a commit tentatively removed us: fork choice may undo that removal
        // and leave us on the lost branch, with the frame long gone (seed 43).
        if !on_that_branch(db, &gid, &lost)? {
            tracing::debug!("keeping a branch-lost frame for a branch we are not on");
            return keep(db, &gid, &lost);
        }
        self.believe_branch_lost(db, &gid, lost, out)
    }

    /// After a Welcome was taken: a kept branch-lost frame that names the epoch it put us
    /// in is believed now.
    pub(crate) fn judge_kept_branch_lost(
        &self,
        db: &Connection,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let kept: Vec<(i64, Vec<u8>)> = {
            let mut stmt = db.prepare(
                "SELECT id, frame FROM kith_branch_lost_kept WHERE group_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![gid.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, bytes) in kept {
            let Some(lost) = BranchLost::decode(&bytes) else {
                continue;
            };
            if on_that_branch(db, gid, &lost)? {
                db.execute(
                    "DELETE FROM kith_branch_lost_kept WHERE id = ?1",
                    params![id],
                )?;
                tracing::debug!("a kept branch-lost frame names the epoch a Welcome put us in");
                return self.believe_branch_lost(db, gid, lost, out);
            }
        }
        Ok(())
    }

    /// We are on the branch a branch-lost frame names: drop it if an admin there signed.
    fn believe_branch_lost(
        &self,
        db: &Connection,
        gid: &GroupId,
        lost: BranchLost,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let gid = gid.clone();
        let provider = self.provider(db);
        let group = load(&provider, &gid)?;
        let signed = BranchLost::signed_bytes(&lost.group, lost.epoch, &lost.epoch_id);
        let admins = super::admin::admins_of(&group);
        let signer = super::control::trusted_signer(
            &group,
            &admins,
            &lost.certificate,
            &lost.signer,
            CONTEXT,
            &signed,
            &lost.signature,
        );
        let Some(signer) = signer else {
            tracing::warn!("refusing a branch-lost frame that no member or admin signed");
            return Ok(());
        };
        if !admins.contains(&signer) {
            tracing::warn!("refusing a branch-lost frame that is not an admin's");
            return Ok(());
        }
        // Kept still: a duplicate of the Welcome that put us on this branch would
        // otherwise take us back to it, alone (seed 446).
        keep(db, &gid, &lost)?;
        // The winning branch may count us too (another admin added us there, and its
        // Welcome came while we were on this branch; seed 180): ask the admins we know
        // to re-add us. One that does not count us ignores the request.
        self.request_rejoin(db, &gid, lost.epoch.saturating_sub(1), &[], out)?;
        super::control::drop_group(&provider, db, &gid)?;
        out.events.push(Event::Removed { group: gid });
        Ok(())
    }
}

fn forget_welcomed(
    db: &Connection,
    gid: &GroupId,
    address: &str,
    epoch: u64,
) -> Result<(), GroupError> {
    db.execute(
        "DELETE FROM kith_welcomed WHERE group_id = ?1 AND address = ?2 AND epoch = ?3",
        params![gid.0, address, epoch as i64],
    )?;
    Ok(())
}

/// Keeps a branch-lost frame, to judge each Welcome taken later against it (at most
/// [`MAX_KEPT_BRANCH_LOST`] in all).
fn keep(db: &Connection, gid: &GroupId, lost: &BranchLost) -> Result<(), GroupError> {
    db.execute(
        "INSERT INTO kith_branch_lost_kept (group_id, frame) VALUES (?1, ?2)",
        params![gid.0, lost.encode()],
    )?;
    db.execute(
        "DELETE FROM kith_branch_lost_kept
         WHERE id <= (SELECT MAX(id) FROM kith_branch_lost_kept) - ?1",
        params![MAX_KEPT_BRANCH_LOST],
    )?;
    Ok(())
}

/// Whether we hold the group (also tentatively removed) on the branch `lost` names: the
/// epoch it names has the id it names.
fn on_that_branch(db: &Connection, gid: &GroupId, lost: &BranchLost) -> Result<bool, GroupError> {
    Ok(store::is_member_group(db, gid)?
        && store::epoch_record(db, gid, lost.epoch)?
            .is_some_and(|(id, _)| id[..] == lost.epoch_id[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_and_refuses_other_control_frames() {
        let frame = BranchLost {
            group: vec![1, 2, 3],
            epoch: 9,
            epoch_id: vec![7; 32],
            certificate: vec![8; 20],
            signer: vec![5; 32],
            signature: vec![6; 64],
        };
        assert_eq!(BranchLost::decode(&frame.encode()), Some(frame));
        let rejoin = super::super::RejoinRequest {
            group: vec![1],
            key_package: vec![2],
            held: None,
        };
        assert_eq!(BranchLost::decode(&rejoin.encode()), None);
        assert_eq!(
            BranchLost::decode(&vec![b' '; MAX_BRANCH_LOST_LEN + 1]),
            None
        );
        assert_eq!(BranchLost::decode(b"{}"), None);
    }
}
