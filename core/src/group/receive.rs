//! Incoming frames: Welcomes, commits (with fork choice and rollback), application
//! messages (with deduplication and anti-entropy).
use kith_crypto::certificate::{DeviceCertificate, VerifiedDevice};
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{verify_leaf_credential, KithProvider};
use rusqlite::Connection;

use super::admin;
use super::commands::{hash, held_epoch, load, members_of, AppEnvelope};
use super::errors::{malformed, mls, unless_rolled_back, GroupError};
use super::fork::{beats, CommitClass, CommitRank};
use super::removal;
use super::store::{self, LoggedCommit};
use super::{
    BranchLost, Event, ForkNotice, GroupEngine, GroupId, Incoming, OpenedWith, Outgoing, Output,
};
use crate::content::{AppMessage, Content};

/// How long a member waits per rank before committing a removal someone asked for (the
/// lowest-ranked member commits at once; the next one after this many seconds, ...).
pub const LEAVE_STEP_SECS: u64 = 30;

impl GroupEngine {
    /// Handles one opened envelope: a Welcome, a commit or an application message.
    ///
    /// Frames that are well-formed but useless (for a group we are not in, an epoch beyond
    /// the horizon, a commit that loses fork choice, a duplicate) give an empty [`Output`];
    /// malformed bytes and refused certificates are errors. Either way the caller may
    /// delete the envelope from the relay once its transaction is settled.
    pub fn receive(
        &self,
        db: &Connection,
        now: u64,
        incoming: Incoming,
    ) -> Result<Output, GroupError> {
        if let Some(id) = incoming.stash_id {
            store::unstash(db, id)?;
        }
        let mut out = Output::default();
        if incoming.frame.kind == FrameKind::Control && incoming.opened_with == OpenedWith::Device {
            let payload = &incoming.frame.payload;
            if let Some(lost) = BranchLost::decode(payload) {
                self.receive_branch_lost(db, lost, &mut out)?;
            } else if let Some(notice) = ForkNotice::decode(payload) {
                self.receive_fork_notice(db, now, notice, &mut out)?;
            } else if let Some(join_hash) = super::JoinHash::decode(payload) {
                self.receive_join_hash(db, join_hash, &mut out)?;
            } else {
                self.receive_rejoin(db, now, payload, &mut out)?;
            }
            self.judge_again_after_receive(db, now, &mut out)?;
            self.finish(db, &mut out)?;
            return Ok(out);
        }
        if incoming.frame.kind != FrameKind::Mls {
            return Ok(out);
        }
        let bytes = &incoming.frame.payload;
        let message = MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).map_err(malformed)?;
        match message.wire_format() {
            WireFormat::Welcome => self.receive_welcome(db, bytes, &mut out)?,
            WireFormat::PublicMessage | WireFormat::PrivateMessage => {
                let protocol = message.try_into_protocol_message().map_err(malformed)?;
                let gid = GroupId(protocol.group_id().as_slice().to_vec());
                if let OpenedWith::Epoch { group, .. } = &incoming.opened_with {
                    if *group != gid {
                        tracing::debug!("frame names another group than its envelope key");
                        return Ok(out);
                    }
                }
                if !store::is_member_group(db, &gid)? {
                    tracing::debug!("frame for a group we are not in");
                    return Ok(out);
                }
                if matches!(protocol, ProtocolMessage::PublicMessage(_)) {
                    self.receive_commit(db, now, bytes, protocol, &gid, &mut out)?;
                } else {
                    self.receive_application(db, now, protocol, &gid, &mut out)?;
                }
            }
            _ => tracing::debug!("ignoring an MLS message that is neither Welcome nor protocol"),
        }
        self.judge_again_after_receive(db, now, &mut out)?;
        self.finish(db, &mut out)?;
        Ok(out)
    }

    pub(crate) fn receive_commit(
        &self,
        db: &Connection,
        now: u64,
        bytes: &[u8],
        protocol: ProtocolMessage,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let provider = self.provider(db);
        let parent = protocol.epoch().as_u64();
        let current = held_epoch(&provider, gid)?;
        let hash = hash(&provider, bytes)?;
        let removed = removal::removed_parent(db, gid)?;
        tracing::debug!(parent, current, ?removed, hash = %hex::encode(&hash[..4]), "commit in");
        // Tentatively removed at `p`: nothing after it can apply, but a commit for `p` or an
        // earlier parent still goes through fork choice and may keep us (seeds 103, 1008).
        if removed.is_some_and(|p| parent > p) {
            return Ok(());
        }
        if parent == current && removed.is_none() {
            let group = load(&provider, gid)?;
            self.merge_incoming(db, now, &provider, group, gid, protocol, hash, bytes, out)?;
            return Ok(());
        }
        if parent > current {
            tracing::debug!(parent, current, "commit for an epoch not reached");
            return Ok(());
        }
        self.compete(db, now, gid, parent, protocol, hash, bytes, out)
    }

    /// A commit for a parent we moved past: fork choice against the commit we merged
    /// there — by rollback within the horizon, by a fork notice or re-join beyond it.
    #[allow(clippy::too_many_arguments)]
    fn compete(
        &self,
        db: &Connection,
        now: u64,
        gid: &GroupId,
        parent: u64,
        protocol: ProtocolMessage,
        hash: Vec<u8>,
        bytes: &[u8],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let Some(incumbent) = store::logged_commit(db, gid, parent)? else {
            tracing::debug!(parent, "commit beyond the horizon");
            return Ok(());
        };
        if incumbent.hash == hash {
            return Ok(());
        }
        // A commit a fork notice made us take beats every other on its parent.
        let pinned = super::fork_notice::pinned(db, gid, parent)?;
        if pinned.as_ref() == Some(&incumbent.hash) {
            tracing::debug!(
                parent,
                "the commit we hold here was pinned by a fork notice"
            );
            return Ok(());
        }
        if !super::snapshot::has_snapshot(db, gid, parent)? {
            return self.diverged(db, gid, parent, &protocol, hash, &incumbent, out);
        }
        let forced = pinned.as_ref() == Some(&hash);
        let mut trial = Output::default();
        let won = store::attempt(db, "kith_fork", &mut trial, |trial| {
            self.try_fork(
                db, now, gid, parent, protocol, hash, bytes, &incumbent, forced, trial,
            )
        })?;
        match won {
            Ok(true) => {
                tracing::debug!(parent, "competing commit won fork choice");
                out.events.push(Event::ForkResolved {
                    group: gid.clone(),
                    parent_epoch: parent,
                });
                out.extend(trial);
            }
            Ok(false) => {}
            Err(error) if error.ends_the_call() => return Err(error),
            Err(error) => {
                let error = unless_rolled_back(db, error)?;
                tracing::debug!(%error, "competing commit did not apply");
            }
        }
        Ok(())
    }

    /// Rolls back to `parent`, applies the competing commit if it beats the one we merged
    /// there (or is `forced`: a fork notice pinned it), then re-issues our dropped intents
    /// and re-sends our dropped messages. The caller undoes everything (savepoint) unless
    /// this returns `Ok(true)`.
    #[allow(clippy::too_many_arguments)]
    fn try_fork(
        &self,
        db: &Connection,
        now: u64,
        gid: &GroupId,
        parent: u64,
        protocol: ProtocolMessage,
        hash: Vec<u8>,
        bytes: &[u8],
        incumbent: &LoggedCommit,
        forced: bool,
        out: &mut Output,
    ) -> Result<bool, GroupError> {
        super::snapshot::restore(db, gid, parent)?;
        let provider = self.provider(db);
        let mut group = load(&provider, gid)?;
        let processed = group.process_message(&provider, protocol).map_err(mls)?;
        let committer = device_of(processed.credential()).map(|d| d.delivery_address);
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Ok(false);
        };
        check_commit_leaves(&staged)?;
        admin::authorise(&group, &staged, committer.ok().as_deref())?;
        let rank = CommitRank {
            class: CommitClass::of(&staged),
            hash: hash.clone(),
        };
        let incumbent = CommitRank {
            class: CommitClass::from_i64(incumbent.class),
            hash: incumbent.hash.clone(),
        };
        if !forced && !beats(&rank, &incumbent) {
            return Ok(false);
        }
        let logged = LoggedCommit {
            class: rank.class.to_i64(),
            hash,
            message: bytes.to_vec(),
        };
        let kept = self.merge_staged(db, now, &provider, &mut group, gid, *staged, logged, out)?;
        // A forced commit is the first of a fork notice's chain: what we did on the
        // abandoned branch is redone once the whole chain is in (`follow_notice`).
        if kept && !forced {
            let sent = store::abandon_from(db, gid, parent, now)?;
            self.redo(db, now, gid, sent, out)?;
        }
        Ok(true)
    }

    /// On the branch we moved to: runs our reopened intents and re-sends `sent`, the
    /// messages we had sent on the branch we left (same ids, so nobody shows them twice).
    pub(crate) fn redo(
        &self,
        db: &Connection,
        now: u64,
        gid: &GroupId,
        sent: Vec<Vec<u8>>,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        self.run_intents(db, now, gid, out)?;
        for encoded in sent {
            let message = AppMessage::decode(&encoded)?;
            out.outgoing.push(self.encrypt(db, gid, &message, true)?);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn merge_incoming(
        &self,
        db: &Connection,
        now: u64,
        provider: &KithProvider<'_>,
        mut group: MlsGroup,
        gid: &GroupId,
        protocol: ProtocolMessage,
        hash: Vec<u8>,
        bytes: &[u8],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let processed = match group.process_message(provider, protocol) {
            Ok(processed) => processed,
            Err(error) => {
                let error = unless_rolled_back(db, error)?;
                tracing::debug!(?error, "commit did not process");
                return Ok(());
            }
        };
        let committer = device_of(processed.credential()).map(|d| d.delivery_address);
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            tracing::debug!("ignoring a public message that is not a commit");
            return Ok(());
        };
        if let Err(error) = check_commit_leaves(&staged) {
            tracing::warn!(%error, "refusing a commit with a leaf whose certificate fails");
            return Ok(());
        }
        if let Err(error) = admin::authorise(&group, &staged, committer.ok().as_deref()) {
            tracing::debug!(%error, "refusing a commit");
            return Ok(());
        }
        let logged = LoggedCommit {
            class: CommitClass::of(&staged).to_i64(),
            hash,
            message: bytes.to_vec(),
        };
        self.merge_staged(db, now, provider, &mut group, gid, *staged, logged, out)?;
        Ok(())
    }

    /// Snapshots, merges, logs. Returns false when the commit removed this device (the
    /// group is then forgotten).
    #[allow(clippy::too_many_arguments)]
    fn merge_staged(
        &self,
        db: &Connection,
        now: u64,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        gid: &GroupId,
        staged: StagedCommit,
        logged: LoggedCommit,
        out: &mut Output,
    ) -> Result<bool, GroupError> {
        let parent = group.epoch().as_u64();
        let before = members_of(group);
        let was_admin = admin::admins_of(group).contains(&self.address);
        let brings_answerers = admin::brings_answerers(&staged);
        super::snapshot::snapshot(db, gid, parent)?;
        if staged.self_removed() {
            // Tentative (removal.rs): stay at the parent, the removal as its incumbent.
            store::log_commit(db, gid, parent, &logged)?;
            removal::mark(db, gid, parent)?;
            self.announce_branch_lost(db, gid, parent, out)?;
            out.events.push(Event::Removed { group: gid.clone() });
            return Ok(false);
        }
        removal::clear(db, gid)?;
        self.check_own_commit_beats(db, gid, parent, &logged, out)?;
        tracing::debug!(parent, class = logged.class, hash = %hex::encode(&logged.hash[..4]), "merging commit");
        group.merge_staged_commit(provider, staged).map_err(mls)?;
        store::log_commit(db, gid, parent, &logged)?;
        self.after_merge(db, provider, group, gid, &before, out)?;
        if !was_admin && admin::admins_of(group).contains(&self.address) {
            self.answer_leave_requests(db, now, group, gid)?;
            // Intents that met "not an admin" after a fork run at the next timeout.
            store::wake_awaiting_admin(db, gid, now)?;
        }
        if brings_answerers {
            self.resend_leave_request(db, gid, out)?;
        }
        Ok(true)
    }

    fn receive_application(
        &self,
        db: &Connection,
        now: u64,
        protocol: ProtocolMessage,
        gid: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let provider = self.provider(db);
        let mut group = load(&provider, gid)?;
        let current = group.epoch().as_u64();
        let processed = match group.process_message(&provider, protocol.clone()) {
            Ok(processed) => processed,
            Err(error) => {
                let error = unless_rolled_back(db, error)?;
                if !self.receive_past_application(db, protocol, gid, out)? {
                    tracing::debug!(?error, "application message did not decrypt");
                }
                return Ok(());
            }
        };
        let sent_epoch = processed.epoch().as_u64();
        let Some((device, envelope)) = opened_application(processed) else {
            return Ok(());
        };
        if sent_epoch < current {
            self.resend_commits(
                db,
                gid,
                sent_epoch,
                &envelope.epoch_id,
                &device.delivery_address,
                out,
            )?;
        }
        tracing::debug!(sent_epoch, current, "application message in");
        if !store::mark_seen(db, gid, &envelope.message.id.0)? {
            // The name is applied again: it is idempotent, and a device that re-joined (its
            // rows forgotten) must learn it from a message it has seen. So is a leave
            // request it no longer remembers (seed 6036: the only admin left to answer it
            // had re-joined by a Welcome and dropped the leaver's re-sends as seen).
            let again = match &envelope.message.content {
                Content::Rename { .. } => true,
                Content::LeaveRequest => {
                    !removal::asked_to_leave(db, gid, &device.delivery_address)?
                }
                _ => false,
            };
            if !again {
                return Ok(());
            }
        }
        self.show(db, now, &group, gid, device, envelope.message, out)
    }

    /// Anti-entropy: the sender was at `epoch` on our branch; send it the commits it lacks,
    /// each sealed with the key of its parent epoch (once per sender and epoch).
    fn resend_commits(
        &self,
        db: &Connection,
        gid: &GroupId,
        epoch: u64,
        sender_epoch_id: &[u8; 32],
        address: &str,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let same_branch =
            store::epoch_record(db, gid, epoch)?.is_some_and(|(id, _)| id == *sender_epoch_id);
        if !same_branch || address == self.address || !store::mark_resent(db, gid, address, epoch)?
        {
            return Ok(());
        }
        let mut parent = epoch;
        while let Some(commit) = store::logged_commit(db, gid, parent)? {
            out.outgoing.push(Outgoing {
                recipients: vec![address.to_owned()],
                key: self.seal_key(db, gid, parent)?,
                frame: Frame {
                    kind: FrameKind::Mls,
                    payload: commit.message,
                },
            });
            parent += 1;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn show(
        &self,
        db: &Connection,
        now: u64,
        group: &MlsGroup,
        gid: &GroupId,
        device: VerifiedDevice,
        message: AppMessage,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        match &message.content {
            Content::Rename { name } => {
                if store::apply_rename(db, gid, name, message.sent_at, &message.id.0)? {
                    out.events.push(Event::Renamed {
                        group: gid.clone(),
                        name: name.clone(),
                    });
                }
            }
            Content::LeaveRequest => {
                tracing::debug!("a member asks to leave");
                self.plan_removal(db, now, group, gid, &device.delivery_address, out)?;
            }
            _ => out.events.push(Event::Message {
                group: gid.clone(),
                sender: device.delivery_address,
                identity: device.identity_key,
                message,
            }),
        }
        Ok(())
    }

    /// A member asked to leave: every other member plans the removal, the lowest leaf
    /// index first and each next one [`LEAVE_STEP_SECS`] later; whoever's turn comes while
    /// the device is still a member commits it (the others' plans become moot).
    fn plan_removal(
        &self,
        db: &Connection,
        now: u64,
        group: &MlsGroup,
        gid: &GroupId,
        address: &str,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        out.events.push(Event::LeaveRequested {
            group: gid.clone(),
            address: address.to_owned(),
        });
        removal::leave_requested(db, gid, address)?;
        self.schedule_leave(db, now, group, gid, address)?;
        self.run_intents(db, now, gid, out)
    }

    /// Plans the removal of a device that asked to leave, if this device is an admin:
    /// ranked among the admins by leaf index, [`LEAVE_STEP_SECS`] apart.
    pub(crate) fn schedule_leave(
        &self,
        db: &Connection,
        now: u64,
        group: &MlsGroup,
        gid: &GroupId,
        address: &str,
    ) -> Result<(), GroupError> {
        let admins = admin::admins_of(group);
        if !admins.contains(&self.address) || address == self.address {
            return Ok(());
        }
        let rank = members_of(group)
            .into_iter()
            .filter(|m| m.address != address && admins.contains(&m.address))
            .map(|m| (m.leaf_index, m.address))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .position(|(_, a)| a == self.address)
            .unwrap_or(usize::MAX / 2) as u64;
        let due = now.saturating_add(rank.saturating_mul(LEAVE_STEP_SECS));
        tracing::debug!(rank, "planning the removal of a device that asked to leave");
        let intent = super::intents::Intent::Remove {
            addresses: vec![address.to_owned()],
        };
        store::add_intent(db, gid, &intent, due)?;
        Ok(())
    }
}

/// Checks every leaf a commit brings in (adds, updates, the committer's new path leaf).
fn check_commit_leaves(staged: &StagedCommit) -> Result<(), GroupError> {
    let mut leaves: Vec<LeafNode> = staged
        .add_proposals()
        .map(|p| p.add_proposal().key_package().leaf_node().clone())
        .collect();
    leaves.extend(
        staged
            .update_proposals()
            .map(|p| p.update_proposal().leaf_node().clone()),
    );
    leaves.extend(staged.update_path_leaf_node().cloned());
    for leaf in &leaves {
        verify_leaf_credential(leaf.credential(), leaf.signature_key(), None)
            .map_err(GroupError::CertificateMismatch)?;
    }
    Ok(())
}

/// The verified sender and the content of a decrypted application message; `None` (and
/// logged) for a leaf whose certificate fails, or content that is not a message of ours.
pub(crate) fn opened_application(
    processed: ProcessedMessage,
) -> Option<(VerifiedDevice, AppEnvelope)> {
    let device = match device_of(processed.credential()) {
        Ok(device) => device,
        Err(error) => {
            tracing::warn!(%error, "message from a leaf without a valid certificate");
            return None;
        }
    };
    let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
        return None;
    };
    match serde_json::from_slice::<AppEnvelope>(&app.into_bytes()) {
        Ok(envelope) => Some((device, envelope)),
        Err(_) => {
            tracing::debug!("application message with malformed content");
            None
        }
    }
}

/// The verified device behind a credential (its key was checked when the leaf was accepted).
fn device_of(credential: &Credential) -> Result<VerifiedDevice, GroupError> {
    let basic = BasicCredential::try_from(credential.clone()).map_err(|_| {
        GroupError::CertificateMismatch(
            kith_crypto::certificate::CertificateError::WrongCredentialType,
        )
    })?;
    DeviceCertificate::decode(basic.identity())
        .and_then(|c| c.verify(None))
        .map_err(GroupError::CertificateMismatch)
}
