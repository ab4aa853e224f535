//! Fork notices: beyond the horizon, the deep branch wins and the other side re-joins it.
//!
//! A device that receives a commit for a parent it can no longer roll back to (no snapshot,
//! `repair.rs`) is on a branch that went more than [`super::HORIZON`] epochs past the fork.
//! The device that made the competing commit may be only one epoch past it (seed 2070: one
//! member's self-update raced an admin who then made ten more commits). Plain fork choice at
//! the parent would then send the whole deep branch — every admin included — to ask for a
//! re-add on a branch one device long, with nobody there to answer. So the device that
//! detects the fork — unless it is a non-admin whose commit loses there, or one that its
//! own branch removes (seed 13756): it asks to be re-added, as before — tells every other
//! member, in a signed `ForkNotice`, which commit it holds at that parent. A member that
//! holds another commit there re-joins the notifier's branch if the notifier is an admin
//! and the member can still roll back to the parent (its own branch is the shallow one), or
//! if fork choice at the parent prefers the notifier's commit. Only an admin's branch can
//! re-add anyone, which is why a shallow branch yields only to an admin's. The notice also
//! lists the admins of the notifier's branch: the member that re-joins asks them, since the
//! admins it knows on its own branch may have left the notifier's (seed 389).
use kith_crypto::frame::FrameKind;
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;
use kith_crypto::mls::openmls::prelude::{MlsGroup, MlsMessageIn};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::commands::{load, members_of};
use super::errors::GroupError;
use super::fork::{beats, CommitClass, CommitRank};
use super::store::{self, LoggedCommit};
use super::{GroupEngine, GroupId, Outgoing, Output};

/// The largest fork notice accepted.
pub const MAX_FORK_NOTICE_LEN: usize = 4 * 1024 * 1024;

/// The most commit bytes a notifier puts in one notice (base64 makes them a third larger);
/// a longer chain is cut, and the member catches up by anti-entropy.
const MAX_NOTICE_COMMIT_BYTES: usize = 2 * 1024 * 1024;

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
    /// Devices that were members at `parent` and are not on the notifier's branch now (at
    /// most [`MAX_NOTICE_ADMINS`]): one of them that must yield but cannot follow the
    /// commits (the first is its own, which openmls cannot process; seed 373) drops the
    /// group, as following would have removed it.
    #[serde(default)]
    pub removed: Vec<String>,
    /// The commits the notifier merged from `parent` on, oldest first (MLSMessage bytes; the
    /// first is the one `hash` names). A member that yields applies them instead of asking
    /// to be re-added. Not signed: each is an MLS commit, checked as such.
    #[serde(default, with = "crate::content::b64_list")]
    pub commits: Vec<Vec<u8>>,
    /// The notifier's device certificate (`DeviceCertificate::encode`), which names
    /// `signer`: a receiver whose branch no longer counts the notifier still knows it as
    /// an admin by it.
    #[serde(default, with = "crate::content::b64")]
    pub certificate: Vec<u8>,
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

    /// Parses bytes from the network; `None` if they are not a fork notice, or list more
    /// than [`MAX_NOTICE_ADMINS`] admins or removed devices, or an address longer than
    /// [`super::MAX_ADDRESS_LEN`].
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let notice: Self = super::control::decode_capped(bytes, MAX_FORK_NOTICE_LEN)?;
        let fits = |list: &[String]| {
            list.len() <= MAX_NOTICE_ADMINS
                && list.iter().all(|a| a.len() <= super::MAX_ADDRESS_LEN)
        };
        (fits(&notice.admins) && fits(&notice.removed)).then_some(notice)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = (self.group.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.group);
        bytes.extend(self.parent.to_be_bytes());
        bytes.push(self.class);
        bytes.extend((self.hash.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&self.hash);
        bytes.extend(super::admin::encode_admins(&self.admins));
        bytes.extend(super::admin::encode_admins(&self.removed));
        bytes
    }
}

/// Creates the tables that remember the forks we sent a notice for, the commits a notice
/// made us take, and who was a member at each epoch we hold (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_fork_notices (
             group_id BLOB NOT NULL,
             parent_epoch INTEGER NOT NULL,
             PRIMARY KEY (group_id, parent_epoch)
         );
         CREATE TABLE IF NOT EXISTS kith_fork_pins (
             group_id BLOB NOT NULL,
             parent_epoch INTEGER NOT NULL,
             hash BLOB NOT NULL,
             PRIMARY KEY (group_id, parent_epoch)
         );
         CREATE TABLE IF NOT EXISTS kith_epoch_members (
             group_id BLOB NOT NULL,
             epoch INTEGER NOT NULL,
             members TEXT NOT NULL,
             PRIMARY KEY (group_id, epoch)
         );",
    )?;
    Ok(())
}

/// The tables, for `forget_group`.
pub(crate) const TABLES: [&str; 3] = ["kith_fork_notices", "kith_fork_pins", "kith_epoch_members"];

/// Records who is a member at `epoch` (whom a fork notice about that epoch must reach).
pub(crate) fn record_members(
    db: &Connection,
    gid: &GroupId,
    epoch: u64,
    members: &[String],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_epoch_members (group_id, epoch, members) VALUES (?1, ?2, ?3)",
        params![gid.0, epoch as i64, serde_json::to_string(members)?],
    )?;
    Ok(())
}

fn members_at(db: &Connection, gid: &GroupId, epoch: u64) -> Result<Vec<String>, GroupError> {
    let json: Option<String> = db
        .query_row(
            "SELECT members FROM kith_epoch_members WHERE group_id = ?1 AND epoch = ?2",
            params![gid.0, epoch as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match json {
        Some(json) => serde_json::from_str(&json)?,
        None => Vec::new(),
    })
}

/// The commit a fork notice made us take on `parent`, if any: it beats every other there.
pub(crate) fn pinned(
    db: &Connection,
    gid: &GroupId,
    parent: u64,
) -> Result<Option<Vec<u8>>, GroupError> {
    Ok(db
        .query_row(
            "SELECT hash FROM kith_fork_pins WHERE group_id = ?1 AND parent_epoch = ?2",
            params![gid.0, parent as i64],
            |r| r.get(0),
        )
        .optional()?)
}

/// Pins `hash` on `parent`: it beats every other commit there (`pinned`).
pub(crate) fn pin(
    db: &Connection,
    gid: &GroupId,
    parent: u64,
    hash: &[u8],
) -> Result<(), GroupError> {
    db.execute(
        "INSERT OR REPLACE INTO kith_fork_pins (group_id, parent_epoch, hash) VALUES (?1, ?2, ?3)",
        params![gid.0, parent as i64, hash],
    )?;
    Ok(())
}

/// Who signed the notice: a member of our tree, or else an admin of ours (by the
/// certificate it carries) that our branch may have removed.
fn notice_signer(group: &MlsGroup, admins: &[String], notice: &ForkNotice) -> Option<String> {
    super::control::trusted_signer(
        group,
        admins,
        &notice.certificate,
        &notice.signer,
        CONTEXT,
        &notice.signed_bytes(),
        &notice.signature,
    )
}

/// Whether we give up `mine` on the notice's parent for the notifier's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Yielding {
    /// We keep our commit.
    No,
    /// Fork choice prefers theirs, or the notifier is an admin of ours.
    Yes,
    /// Only if the notifier is an admin on its own branch, as the chain it sent shows.
    IfAdminThere,
}

impl Yielding {
    /// Only an admin's branch can re-add us: a shallow branch yields to an admin's deep one
    /// (`open`: we are shallow and no earlier notice pinned our commit); otherwise fork
    /// choice at the parent decides.
    fn judge(
        notice: &ForkNotice,
        mine: &CommitRank,
        admins: &[String],
        signer: &str,
        open: bool,
    ) -> Self {
        let theirs = CommitRank {
            class: CommitClass::from_i64(i64::from(notice.class)),
            hash: notice.hash.clone(),
        };
        if beats(&theirs, mine) || (open && admins.iter().any(|a| a == signer)) {
            Yielding::Yes
        } else if open && notice.admins.iter().any(|a| a == signer) {
            Yielding::IfAdminThere
        } else {
            Yielding::No
        }
    }
}

/// Our logged commits from `parent` on, oldest first, as many as fit in one notice.
fn chain_from(db: &Connection, gid: &GroupId, parent: u64) -> Result<Vec<Vec<u8>>, GroupError> {
    let mut chain = Vec::new();
    let mut bytes = 0;
    let mut epoch = parent;
    while let Some(commit) = store::logged_commit(db, gid, epoch)? {
        bytes += commit.message.len();
        if bytes > MAX_NOTICE_COMMIT_BYTES {
            break;
        }
        chain.push(commit.message);
        epoch += 1;
    }
    Ok(chain)
}

impl GroupEngine {
    /// We hold `ours` on `parent` and cannot roll back there: tell every device that is a
    /// member now or was one at `parent` (once per parent). Those we removed since are on
    /// the other branch too, and only a notice lets them follow ours to their removal
    /// (seed 51).
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
        // An admin keeps its branch against fork choice here: its Welcomes say so
        // (`LineageEntry::pinned`), so that a device on the other side takes them.
        if super::admin::admins_of(&group).contains(&self.address) {
            pin(db, gid, parent, &ours.hash)?;
        }
        let (recipients, removed) = self.audience(db, gid, &group, parent)?;
        let mut notice = ForkNotice {
            group: gid.0.clone(),
            parent,
            class: ours.class as u8,
            hash: ours.hash.clone(),
            admins: super::admin::admins_of(&group)
                .into_iter()
                .take(MAX_NOTICE_ADMINS)
                .collect(),
            removed,
            commits: chain_from(db, gid, parent)?,
            certificate: self.certificate.encode(),
            signer: self.signer.public_key().to_vec(),
            signature: Vec::new(),
        };
        notice.signature = self
            .signer
            .sign_control(CONTEXT, &notice.signed_bytes())
            .to_vec();
        for address in recipients {
            out.outgoing.push(Outgoing::to_device(
                &address,
                FrameKind::Control,
                notice.encode(),
            ));
        }
        Ok(())
    }

    /// Whom a notice about `parent` goes to — every member now or at `parent` but us — and
    /// those of `parent` our branch no longer counts (at most [`MAX_NOTICE_ADMINS`]).
    fn audience(
        &self,
        db: &Connection,
        gid: &GroupId,
        group: &MlsGroup,
        parent: u64,
    ) -> Result<(Vec<String>, Vec<String>), GroupError> {
        let members: Vec<String> = members_of(group).into_iter().map(|m| m.address).collect();
        let then = members_at(db, gid, parent)?;
        let mut removed: Vec<String> = then
            .iter()
            .filter(|a| !members.contains(a))
            .cloned()
            .collect();
        removed.sort();
        removed.dedup();
        removed.truncate(MAX_NOTICE_ADMINS);
        let mut recipients: Vec<String> = members
            .into_iter()
            .chain(then)
            .filter(|a| *a != self.address)
            .collect();
        recipients.sort();
        recipients.dedup();
        Ok((recipients, removed))
    }

    /// A fork notice arrived: if we hold another commit on its parent, move to the
    /// notifier's branch when ours is the shallow one or loses fork choice there — by
    /// rolling back and applying the notice's commits when we can, else by asking to be
    /// re-added. A notice we can still act on later is kept (`keep`): a fork we resolve
    /// afterwards may put another commit on its parent (seed 6476).
    pub(crate) fn receive_fork_notice(
        &self,
        db: &Connection,
        now: u64,
        notice: ForkNotice,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let gid = GroupId(notice.group.clone());
        if !store::is_member_group(db, &gid)? {
            return Ok(());
        }
        // What we hold on the parent: a commit we merged, or — if we joined after it (seed
        // 373) — the one the lineage we joined with lists there.
        let ours = match store::logged_commit(db, &gid, notice.parent)? {
            Some(commit) => Some((commit.class, commit.hash)),
            None => super::lineage::joined_entry(db, &gid, notice.parent)?,
        };
        let Some((our_class, our_hash)) = ours else {
            return Ok(());
        };
        if notice.class > 2 {
            return Ok(());
        }
        let provider = self.provider(db);
        let group = load(&provider, &gid)?;
        let admins = super::admin::admins_of(&group);
        let signer = notice_signer(&group, &admins, &notice);
        let Some(signer) = signer else {
            tracing::warn!("refusing a fork notice that no member or admin signed");
            return Ok(());
        };
        // Shallow: our branch went at most H epochs past the parent (we can roll back
        // there, or joined after it and are not H past it).
        let can_roll_back = super::snapshot::has_snapshot(db, &gid, notice.parent)?;
        // Kept even while a commit has (tentatively) removed us: a fork may undo that.
        if can_roll_back {
            super::kept_notices::keep(db, &gid, &signer, &notice)?;
        }
        if our_hash == notice.hash {
            // An admin of ours holds our commit here beyond its horizon: it stays, even
            // against a better commit that reaches us later (seed 1702).
            if admins.contains(&signer) && pinned(db, &gid, notice.parent)?.is_none() {
                pin(db, &gid, notice.parent, &our_hash)?;
            }
            return Ok(());
        }
        // Followed also while a commit on our branch tentatively removes us: the notice's
        // branch may keep us (seed 8644: the device waited out its removal on a branch
        // that the admin's deep branch replaced, and the group still counted it).
        let depth = group.epoch().as_u64().saturating_sub(notice.parent);
        let shallow = can_roll_back || depth <= super::HORIZON;
        let mine = CommitRank {
            class: CommitClass::from_i64(our_class),
            hash: our_hash,
        };
        let pinned = pinned(db, &gid, notice.parent)?.is_some();
        let yielding = Yielding::judge(&notice, &mine, &admins, &signer, shallow && !pinned);
        if yielding == Yielding::No {
            return self.answer_refused_notice(db, &gid, &notice, &mine, out);
        }
        // A notifier our branch does not count as an admin must be one at the end of the
        // chain it sent (seed 6476: made admin on its branch after the fork).
        let confirm = (yielding == Yielding::IfAdminThere).then_some(signer.as_str());
        if can_roll_back && self.follow_notice(db, now, &gid, &notice, confirm, out)? {
            tracing::debug!(
                parent = notice.parent,
                "moved to the branch of a fork notice"
            );
            return self.judge_welcomes_after_fork(db, &gid, out);
        }
        if confirm.is_some() {
            return Ok(());
        }
        if notice.removed.contains(&self.address) {
            tracing::debug!("the branch of a fork notice no longer counts us");
            self.announce_branch_lost(db, &gid, notice.parent, out)?;
            super::control::drop_group(&provider, db, &gid)?;
            out.events.push(super::Event::Removed { group: gid });
            return Ok(());
        }
        tracing::debug!(shallow, "re-joining the branch of a fork notice");
        self.request_rejoin(db, &gid, notice.parent, &notice.admins, out)
    }

    /// We keep our branch against a notice because our commit beats the notifier's on its
    /// parent, and we are too deep to have rolled back: the notifier, deep too, would
    /// never learn it lost, so it gets our notice (once per parent), and with it the
    /// chance to ask for a re-add (seed 8499: a deep admin's notice was refused by a
    /// deep group with admins, and the admin stayed on its branch alone).
    fn answer_refused_notice(
        &self,
        db: &Connection,
        gid: &GroupId,
        notice: &ForkNotice,
        mine: &CommitRank,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let theirs = CommitRank {
            class: CommitClass::from_i64(i64::from(notice.class)),
            hash: notice.hash.clone(),
        };
        if !beats(mine, &theirs) || !super::control::holds_active(db, gid)? {
            return Ok(());
        }
        match store::logged_commit(db, gid, notice.parent)? {
            Some(ours) => self.send_fork_notice(db, gid, notice.parent, &ours, out),
            None => Ok(()),
        }
    }

    /// Takes the notice's commit on its parent (pinned, so that fork choice does not undo
    /// it) and the commits after it, then redoes what we did on the branch we left. False,
    /// and nothing changed, if the commit is missing or does not apply.
    fn follow_notice(
        &self,
        db: &Connection,
        now: u64,
        gid: &GroupId,
        notice: &ForkNotice,
        confirm: Option<&str>,
        out: &mut Output,
    ) -> Result<bool, GroupError> {
        let provider = self.provider(db);
        let Some(first) = notice.commits.first() else {
            return Ok(false);
        };
        if super::commands::hash(&provider, first)? != notice.hash {
            tracing::warn!("a fork notice's commit does not match its hash");
            return Ok(false);
        }
        store::attempt(db, "kith_follow", out, |trial| {
            self.take_chain(db, now, gid, notice, confirm, trial)
        })?
    }

    fn take_chain(
        &self,
        db: &Connection,
        now: u64,
        gid: &GroupId,
        notice: &ForkNotice,
        confirm: Option<&str>,
        out: &mut Output,
    ) -> Result<bool, GroupError> {
        pin(db, gid, notice.parent, &notice.hash)?;
        // Read before the chain moves us on: pruning would drop them meanwhile.
        let sent = store::abandon_from(db, gid, notice.parent, now)?;
        // The notifier must be an admin somewhere along its chain; it may remove us.
        let mut confirmed = confirm.is_none();
        for bytes in &notice.commits {
            let Some(protocol) = MlsMessageIn::tls_deserialize_exact(bytes.as_slice())
                .ok()
                .and_then(|m| m.try_into_protocol_message().ok())
                .filter(|p| p.group_id().as_slice() == gid.0.as_slice())
            else {
                break;
            };
            self.receive_commit(db, now, bytes, protocol, gid, out)?;
            // A commit of the chain that removes us shows an admin at work on that branch
            // too (a removal passes the admin rules at its parent), and we can read no
            // further (seed 6476: the device kept its dead branch, counted by nobody).
            if let (false, Some(signer)) = (confirmed, confirm) {
                confirmed = super::removal::removed_parent(db, gid)?.is_some()
                    || (super::control::holds_active(db, gid)?
                        && super::admin::admins_of(&load(&self.provider(db), gid)?)
                            .iter()
                            .any(|a| a == signer));
            }
        }
        let taken = confirmed
            && store::logged_commit(db, gid, notice.parent)?
                .is_some_and(|commit| commit.hash == notice.hash)
            && self.took_whole_chain(db, gid, notice)?;
        if taken && super::control::holds_active(db, gid)? {
            self.redo(db, now, gid, sent, out)?;
        }
        Ok(taken)
    }
}

impl GroupEngine {
    /// Whether following `notice` applied every commit it carries (or one removed us on
    /// the way). A chain that stops short leaves us on no branch at all — seed 705: it
    /// held our own earlier commit, which openmls cannot process — so it is not taken.
    fn took_whole_chain(
        &self,
        db: &Connection,
        gid: &GroupId,
        notice: &ForkNotice,
    ) -> Result<bool, GroupError> {
        if super::removal::removed_parent(db, gid)?.is_some() || !store::is_member_group(db, gid)? {
            return Ok(true);
        }
        let epoch = load(&self.provider(db), gid)?.epoch().as_u64();
        Ok(epoch == notice.parent + notice.commits.len() as u64)
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
            removed: vec!["b@x".into()],
            commits: vec![vec![6; 40], Vec::new()],
            certificate: vec![7; 10],
            signer: vec![4; 32],
            signature: vec![5; 64],
        };
        assert_eq!(ForkNotice::decode(&notice.encode()), Some(notice));
        let lost = super::super::BranchLost {
            group: vec![1],
            epoch: 2,
            epoch_id: vec![0; 32],
            certificate: Vec::new(),
            signer: vec![0; 32],
            signature: vec![0; 64],
        };
        assert_eq!(ForkNotice::decode(&lost.encode()), None);
        assert_eq!(ForkNotice::decode(b"{}"), None);
    }
}
