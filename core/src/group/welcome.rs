//! Welcomes: joining a group, and judging a Welcome for a group we already hold.
//!
//! A Welcome for a group we do not hold is taken if its sender is an admin and every leaf
//! of its tree carries a certificate that verifies. One for a group we hold replaces our
//! state only if it is better (`lineage.rs`: fork choice at the first parent where the
//! chains differ), or if we asked to be re-added or were removed. A Welcome judged before
//! the hash of its own add arrived waits for it (`join_hash.rs`).
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{group_join_config, verify_leaf_credential};
use rusqlite::Connection;

use super::admin;
use super::errors::{malformed, mls, unless_rolled_back, GroupError};
use super::intents::Intent;
use super::join_hash;
use super::lineage::{self, Lineage, LINEAGE_EXTENSION_TYPE};
use super::removal;
use super::store;
use super::{Event, GroupEngine, GroupId, Output};
use crate::content::{AppMessage, Content};

/// A Welcome we could open, staged but not yet taken.
struct OpenedWelcome {
    staged: StagedWelcome,
    /// The group it is for, and the epoch it puts us in.
    group: GroupId,
    epoch: u64,
    /// The adder's chain, with the hash of the add filled in if its join hash came first.
    lineage: Option<Lineage>,
    /// The adder's leaf signature key and the new epoch's transcript.
    join: Option<join_hash::Join>,
    /// Our KeyPackage it used.
    used: Option<KeyPackageRef>,
}

impl GroupEngine {
    /// A Welcome (`MLSMessage` bytes) arrived, or waited for its join hash and may now be
    /// judged with it.
    pub(crate) fn receive_welcome(
        &self,
        db: &Connection,
        bytes: &[u8],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(malformed)?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(GroupError::MalformedMls("not a Welcome".into()));
        };
        let Some(opened) = self.open_welcome(db, welcome)? else {
            return Ok(());
        };
        let lineage = opened.lineage.as_ref();
        if self.is_stale_welcome(db, &opened.group, opened.epoch, lineage)? {
            tracing::debug!("ignoring a Welcome no better than the group state we hold");
            // Judged without the hash of its add, or of the add that put us in (seed
            // 1391), it is judged again when the hash comes; and after a fork moves us to
            // another branch, where it may be better (seed 8639: a deep admin's notice
            // took a device to the branch that Welcome re-added it on).
            join_hash::keep_welcome(db, &opened.group, opened.epoch, bytes)?;
            // One from before our current epoch may be a past membership of ours (seed
            // 9857: removed and re-added, the re-adding Welcome came first).
            // A Welcome refused here (a leaf whose certificate fails) is only not kept.
            if matches!(is_from_the_group(&opened.staged), Ok(true)) {
                let OpenedWelcome {
                    staged,
                    group,
                    epoch,
                    lineage,
                    ..
                } = opened;
                self.keep_past_membership(db, &group, epoch, lineage.as_ref(), staged, out)?;
            }
            return Ok(());
        }
        if !is_from_the_group(&opened.staged)? {
            return Ok(());
        }
        self.take_welcome(db, opened, out)
    }

    /// Opens and stages a Welcome; `None` if it is for no KeyPackage we hold (or a
    /// duplicate of one already used).
    fn open_welcome(
        &self,
        db: &Connection,
        welcome: Welcome,
    ) -> Result<Option<OpenedWelcome>, GroupError> {
        let provider = self.provider(db);
        let builder =
            match StagedWelcome::build_from_welcome(&provider, &group_join_config(), welcome) {
                Ok(builder) => builder,
                Err(error) => {
                    let error = unless_rolled_back(db, error)?;
                    tracing::debug!(?error, "ignoring a Welcome we cannot open");
                    return Ok(None);
                }
            };
        let mut lineage = builder
            .processed_welcome()
            .unverified_group_info()
            .extensions()
            .unknown(LINEAGE_EXTENSION_TYPE)
            .and_then(|extension| Lineage::decode(&extension.0));
        let used = match builder.processed_welcome().own_key_package() {
            Some(package) => Some(package.hash_ref(provider.crypto()).map_err(mls)?),
            None => None,
        };
        let staged = builder.replace_old_group().build().map_err(mls)?;
        let context = staged.group_context();
        let group = GroupId(context.group_id().as_slice().to_vec());
        let epoch = context.epoch().as_u64();
        let join = staged.welcome_sender().ok().map(|leaf| join_hash::Join {
            signer: leaf.signature_key().as_slice().to_vec(),
            transcript: Some(context.confirmed_transcript_hash().to_vec()),
        });
        if let (Some(lineage), Some(join)) = (lineage.as_mut(), &join) {
            join_hash::fill_from_pending(db, &group, epoch, join, lineage)?;
        }
        Ok(Some(OpenedWelcome {
            staged,
            group,
            epoch,
            lineage,
            join,
            used,
        }))
    }

    /// Replaces whatever we held of the group with the Welcome's state, and re-sends what
    /// we had sent on the branch we leave.
    fn take_welcome(
        &self,
        db: &Connection,
        opened: OpenedWelcome,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let provider = self.provider(db);
        let gid = opened.group;
        let (resend, leaving) = carried_over(db, &gid)?;
        let intents = intents_carried_over(db, &gid, opened.lineage.as_ref())?;
        let fork = match &opened.lineage {
            Some(lineage) => lineage::first_difference(db, &gid, lineage)?,
            None => None,
        };
        // The devices we added on the branch we leave are on a lost branch too (seed
        // 8879: they stayed there, counting us).
        if let Some(fork) = fork {
            self.announce_branch_lost(db, &gid, fork, out)?;
        }
        // A past membership stays while the chain keeps its epoch.
        let kept_until = opened.lineage.as_ref().map(|_| fork.unwrap_or(u64::MAX));
        super::past_membership::forget_if_off_chain(db, &gid, kept_until)?;
        let lineage = opened.lineage.is_some();
        self.keep_replaced_membership(db, &gid, opened.epoch, lineage, fork)?;
        let group = opened.staged.into_group(&provider).map_err(mls)?;
        store::forget_group(db, &gid)?;
        store::ensure_group_row(db, &gid)?;
        for (intent, not_before) in &intents {
            store::add_intent(db, &gid, intent, *not_before)?;
        }
        if let Some(lineage) = &opened.lineage {
            lineage::store_joined(db, &gid, lineage)?;
        }
        if let Some(join) = &opened.join {
            join_hash::record_join(db, &gid, join)?;
        }
        if let Some(request) = &leaving {
            removal::set_leaving(db, &gid, request)?;
        }
        let epoch = group.epoch().as_u64();
        if let Some(used) = opened.used {
            store::used_key_package(db, &gid, epoch, &serde_json::to_vec(&used)?)?;
        }
        self.record_current_epoch(db, &provider, &group, &gid)?;
        for message in resend {
            out.outgoing.push(self.encrypt(db, &gid, &message, true)?);
        }
        self.apply_join_hashes(db, &gid)?;
        out.events.push(Event::Joined { group: gid.clone() });
        out.events.push(Event::EpochChanged {
            group: gid.clone(),
            epoch,
        });
        // Its adder may have told us already that this branch is lost (seed 6071).
        self.judge_kept_branch_lost(db, &gid, out)
    }

    /// A Welcome for a group we already hold replaces our state only if we asked to be
    /// re-added, or it is better than ours (`lineage.rs`): a duplicated or late Welcome
    /// must not roll an up-to-date device back to the epoch it joined at. That holds while
    /// a commit tentatively removes us too (seed 6117: an old duplicate of the Welcome a
    /// device joined with put it back on a stale epoch nobody else was at); a Welcome that
    /// re-adds us after the removal is better, as it is for a later epoch on our chain.
    pub(crate) fn is_stale_welcome(
        &self,
        db: &Connection,
        gid: &GroupId,
        epoch: u64,
        lineage: Option<&Lineage>,
    ) -> Result<bool, GroupError> {
        if !store::is_member_group(db, gid)? || super::repair::already_requested(db, gid)? {
            return Ok(false);
        }
        let provider = self.provider(db);
        let ours = match super::commands::held_epoch(&provider, gid) {
            Ok(ours) => ours,
            // The transaction is failing: the call ends, and the Welcome is judged again
            // when the frame is.
            Err(error) if error.ends_the_call() => return Err(error),
            // No state we can read: any Welcome is better than none.
            Err(error) => {
                let error = unless_rolled_back(db, error)?;
                tracing::warn!(%error, "judging a Welcome against a group state we cannot read");
                return Ok(false);
            }
        };
        Ok(match lineage {
            Some(lineage) => !super::lineage::welcome_is_better(db, gid, ours, epoch, lineage)?,
            None => ours >= epoch,
        })
    }
}

/// Whether the group made this Welcome: members accepted the add only from an admin of
/// its parent epoch, and admins are never dropped, so its sender must be an admin; and
/// every leaf's certificate must verify (an error if one does not).
fn is_from_the_group(staged: &StagedWelcome) -> Result<bool, GroupError> {
    if !made_by_an_admin(staged) {
        tracing::warn!("refusing a Welcome whose sender is not an admin of the group");
        return Ok(false);
    }
    for member in staged.members() {
        let key = SignaturePublicKey::from(member.signature_key.clone());
        verify_leaf_credential(&member.credential, &key, None)
            .map_err(GroupError::CertificateMismatch)?;
    }
    Ok(true)
}

/// Whether the Welcome's sender is an admin in the group context it carries.
fn made_by_an_admin(staged: &StagedWelcome) -> bool {
    let adder = staged
        .welcome_sender()
        .ok()
        .and_then(|leaf| verify_leaf_credential(leaf.credential(), leaf.signature_key(), None).ok())
        .map(|device| device.delivery_address);
    let admins = admin::admins_in(staged.group_context().extensions());
    adder.is_some_and(|adder| admins.contains(&adder))
}

/// What a device joining from a Welcome while it holds the group sends again, read before
/// the group's rows are forgotten. Moving to another branch (or back after a removal), what
/// we sent on the old one is sent on the new one (same ids, so nobody is shown it twice),
/// and a pending leave request goes along and stays pending (returned second) — unless a
/// commit removed us: that answered the request, and this Welcome is a new membership.
fn carried_over(
    db: &Connection,
    gid: &GroupId,
) -> Result<(Vec<AppMessage>, Option<Vec<u8>>), GroupError> {
    let mut sent = store::all_sent(db, gid)?;
    let removed = removal::removed_parent(db, gid)?.is_some();
    let leaving = match removed {
        true => None,
        false => removal::leaving(db, gid)?,
    };
    if let Some(request) = leaving.as_ref().filter(|r| !sent.contains(r)) {
        sent.push(request.clone());
    }
    let mut messages = Vec::with_capacity(sent.len());
    for encoded in sent {
        let message = AppMessage::decode(&encoded)?;
        if !(removed && matches!(message.content, Content::LeaveRequest)) {
            messages.push(message);
        }
    }
    Ok((messages, leaving))
}

/// The membership changes a device moving to another branch by a Welcome still wants (seed
/// 6229: an admin removed a device on its branch, then a better Welcome moved it to a
/// branch where that device is still in), each with when it is due. Pending ones go along
/// as they are; one our commit carried goes along, due at once, unless the Welcome's
/// lineage holds that very commit or the commit is older than the lineage (shared history).
/// A device a commit removed carries nothing: the Welcome starts a new membership, and the
/// plans of the old one died with it, as its leave request does.
fn intents_carried_over(
    db: &Connection,
    gid: &GroupId,
    lineage: Option<&Lineage>,
) -> Result<Vec<(Intent, u64)>, GroupError> {
    if !store::is_member_group(db, gid)? || removal::removed_parent(db, gid)?.is_some() {
        return Ok(Vec::new());
    }
    let entries = lineage.map_or(&[][..], |l| l.entries.as_slice());
    let on_their_branch = |parent: u64, hash: &[u8]| {
        entries.first().is_none_or(|first| parent < first.parent)
            || entries
                .iter()
                .any(|e| e.parent == parent && e.hash.is_some_and(|h| h[..] == *hash))
    };
    let mut carried = Vec::new();
    for stored in store::all_intents(db, gid)? {
        match &stored.settled {
            None => carried.push((stored.intent, stored.not_before.max(0) as u64)),
            Some((parent, hash)) if !on_their_branch(*parent, hash) => {
                carried.push((stored.intent, 0))
            }
            Some(_) => {}
        }
    }
    Ok(carried)
}
