//! Fork notices: beyond the horizon, the deep branch wins and the other side re-joins it.
//!
//! A device that receives a commit for a parent it can no longer roll back to (no snapshot,
//! `repair.rs`) is on a branch that went more than [`super::HORIZON`] epochs past the fork.
//! The device that made the competing commit may be only one epoch past it (seed 2070: one
//! member's self-update raced an admin who then made ten more commits). Plain fork choice at
//! the parent would then send the whole deep branch — every admin included — to ask for a
//! re-add on a branch one device long, with nobody there to answer. So the device that
//! detects the fork — unless it is a non-admin whose commit loses there: it asks to be
//! re-added, as before — tells every other member, in a signed `ForkNotice`, which commit
//! it holds at that parent. A member that holds another commit there re-joins the
//! notifier's branch if the notifier is an admin and the member can still roll back to the
//! parent (its own branch is the shallow one), or if fork choice at the parent prefers the
//! notifier's commit. Only an admin's branch can re-add anyone, which is why a shallow
//! branch yields only to an admin's. The notice also lists the admins of the notifier's
//! branch: the member that re-joins asks them, since the admins it knows on its own branch
//! may have left the notifier's (seed 389).
use kith_crypto::frame::{Frame, FrameKind};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::commands::{load, members_of};
use super::errors::GroupError;
use super::fork::{beats, CommitClass, CommitRank};
use super::store::{self, LoggedCommit};
use super::{GroupEngine, GroupId, Outgoing, Output, SealKey};

/// The largest fork notice accepted.
pub const MAX_FORK_NOTICE_LEN: usize = 64 * 1024;

/// The most admins a fork notice lists (enough to reach one that answers).
pub const MAX_NOTICE_ADMINS: usize = 64;

const CONTEXT: &str = "fork-notice";

/// The payload of a `FrameKind::Control` frame: "on `parent` I hold this commit".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkNotice {
    /// The group id.
    pub group: Vec<u8>,
    /// The parent epoch of the fork.
    pub parent: u64,
    /// The fork-choice class of the notifier's commit there (0, 1 or 2).
    pub class: u8,
    /// SHA-256 of the notifier's commit there.
    pub hash: Vec<u8>,
    /// The admins of the notifier's branch (delivery addresses), whom a re-joining member
    /// asks to re-add it.
    #[serde(default)]
    pub admins: Vec<String>,
    /// The notifier's leaf signature key (32 bytes).
    pub signer: Vec<u8>,
    /// Ed25519 over the other fields (`kith_crypto::mls::verify_control`).
    pub signature: Vec<u8>,
}

impl ForkNotice {
    /// The wire form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a fork notice always serializes")
    }

    /// Parses bytes from the network; `None` if they are not a fork notice.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        super::control::decode_capped(bytes, MAX_FORK_NOTICE_LEN)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = (self.group.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.group);
        bytes.extend(self.parent.to_be_bytes());
        bytes.push(self.class);
        bytes.extend((self.hash.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&self.hash);
        bytes.extend(super::admin::encode_admins(&self.admins));
        bytes
    }
}

/// Creates the table that remembers the forks we sent a notice for (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_fork_notices (
             group_id BLOB NOT NULL,
             parent_epoch INTEGER NOT NULL,
             PRIMARY KEY (group_id, parent_epoch)
         );",
    )?;
    Ok(())
}

/// The table, for `forget_group`.
pub(crate) const TABLE: &str = "kith_fork_notices";

impl GroupEngine {
    /// We hold `ours` on `parent` and cannot roll back there: tell every other member
    /// (once per parent).
    pub(crate) fn send_fork_notice(
        &self,
        db: &Connection,
        gid: &GroupId,
        parent: u64,
        ours: &LoggedCommit,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let new = db.execute(
            "INSERT OR IGNORE INTO kith_fork_notices (group_id, parent_epoch) VALUES (?1, ?2)",
            params![gid.0, parent as i64],
        )? == 1;
        if !new {
            return Ok(());
        }
        let group = load(&self.provider(db), gid)?;
        let mut notice = ForkNotice {
            group: gid.0.clone(),
            parent,
            class: ours.class as u8,
            hash: ours.hash.clone(),
            admins: super::admin::admins_of(&group)
                .into_iter()
                .take(MAX_NOTICE_ADMINS)
                .collect(),
            signer: self.signer.public_key().to_vec(),
            signature: Vec::new(),
        };
        notice.signature = self
            .signer
            .sign_control(CONTEXT, &notice.signed_bytes())
            .to_vec();
        for member in members_of(&group) {
            if member.address == self.address {
                continue;
            }
            out.outgoing.push(Outgoing {
                recipients: vec![member.address.clone()],
                key: SealKey::Device {
                    address: member.address,
                },
                frame: Frame {
                    kind: FrameKind::Control,
                    payload: notice.encode(),
                },
            });
        }
        Ok(())
    }

    /// A fork notice arrived: if we hold another commit on its parent, re-join the
    /// notifier's branch when ours is the shallow one or loses fork choice there.
    pub(crate) fn receive_fork_notice(
        &self,
        db: &Connection,
        notice: ForkNotice,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let gid = GroupId(notice.group.clone());
        if !super::control::holds_active(db, &gid)? {
            return Ok(());
        }
        let Some(ours) = store::logged_commit(db, &gid, notice.parent)? else {
            return Ok(());
        };
        if ours.hash == notice.hash || notice.class > 2 {
            return Ok(());
        }
        let provider = self.provider(db);
        let group = load(&provider, &gid)?;
        let signed = notice.signed_bytes();
        let signer =
            super::control::signer_of(&group, &notice.signer, CONTEXT, &signed, &notice.signature);
        let Some(signer) = signer else {
            tracing::warn!("refusing a fork notice that no member signed");
            return Ok(());
        };
        let shallow = store::has_snapshot(db, &gid, notice.parent)?;
        let theirs = CommitRank {
            class: CommitClass::from_i64(i64::from(notice.class)),
            hash: notice.hash,
        };
        let mine = CommitRank {
            class: CommitClass::from_i64(ours.class),
            hash: ours.hash,
        };
        // Only an admin's branch can re-add us: a shallow branch yields to an admin's deep
        // one; otherwise fork choice at the parent decides.
        let notifier_is_admin = super::admin::admins_of(&group).contains(&signer);
        if (shallow && notifier_is_admin) || beats(&theirs, &mine) {
            tracing::debug!(shallow, "re-joining the branch of a fork notice");
            self.request_rejoin(db, &gid, notice.parent, &notice.admins, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_and_refuses_other_control_frames() {
        let notice = ForkNotice {
            group: vec![1, 2],
            parent: 4,
            class: 2,
            hash: vec![3; 32],
            admins: vec!["a@x".into()],
            signer: vec![4; 32],
            signature: vec![5; 64],
        };
        assert_eq!(ForkNotice::decode(&notice.encode()), Some(notice));
        let lost = super::super::BranchLost {
            group: vec![1],
            epoch: 2,
            epoch_id: vec![0; 32],
            signer: vec![0; 32],
            signature: vec![0; 64],
        };
        assert_eq!(ForkNotice::decode(&lost.encode()), None);
        assert_eq!(ForkNotice::decode(b"{}"), None);
    }
}
