//! Intents: the changes this device wants committed (add, remove, self-update, grant,
//! re-add). Each is recorded, then carried out as a commit of ours; it stays until that
//! commit stays on the chain, and is re-issued when fork choice drops the commit.
use std::collections::HashSet;

use kith_crypto::frame::FrameKind;
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::KithProvider;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::commands::{hash, load, members_of, mls_frame, parse_key_package, serialize};
use super::errors::{mls, unless_rolled_back, GroupError};
use super::fork::{CommitClass, CommitRank};
use super::lineage;
use super::store::{self, LoggedCommit};
use super::Outgoing;
use super::{GroupEngine, GroupId, Output};
use crate::content::{AppMessage, Content, MessageId};

/// A change this device wants committed; kept until a commit of ours carrying it stays on
/// the chain, and re-issued when fork choice drops that commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Intent {
    /// Add these devices: (KeyPackage bytes, expected identity key bytes).
    Add { devices: Vec<(Vec<u8>, [u8; 32])> },
    /// Remove the devices with these delivery addresses.
    Remove { addresses: Vec<String> },
    /// Refresh this device's leaf keys.
    SelfUpdate,
    /// Make the member devices with these delivery addresses admins.
    Grant { addresses: Vec<String> },
    /// Re-add a member device that fell on a losing branch beyond the horizon: remove its
    /// old leaf and add this KeyPackage (whose certificate is signed by `identity`).
    Readd {
        /// The new KeyPackage.
        key_package: Vec<u8>,
        /// The identity key of the device's owner.
        identity: [u8; 32],
    },
}

impl Intent {
    /// The intent's kind, for logs (never its content).
    fn kind(&self) -> &'static str {
        match self {
            Intent::Add { .. } => "add",
            Intent::Remove { .. } => "remove",
            Intent::SelfUpdate => "self-update",
            Intent::Readd { .. } => "re-add",
            Intent::Grant { .. } => "grant",
        }
    }
}

/// A commit of ours staged for an intent, not yet merged.
struct Staged {
    /// The commit.
    commit: MlsMessageOut,
    /// For a commit that adds devices: the Welcome for them.
    welcome: Option<Welcome>,
}

impl Staged {
    /// A staged commit that adds no device.
    fn plain(commit: MlsMessageOut) -> Self {
        Self {
            commit,
            welcome: None,
        }
    }
}

/// A Welcome and the delivery addresses of the devices it welcomes.
struct Welcome {
    /// The Welcome message.
    message: MlsMessageOut,
    /// The added devices' delivery addresses.
    added: Vec<String>,
}

impl GroupEngine {
    /// Records intents and carries them out now, in order.
    pub(crate) fn issue(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
        intents: Vec<Intent>,
    ) -> Result<Output, GroupError> {
        load(&self.provider(db), group)?;
        super::removal::require_active(db, group)?;
        for intent in &intents {
            store::add_intent(db, group, intent, now)?;
        }
        let mut out = Output::default();
        self.run_intents(db, now, group, &mut out)?;
        self.finish(db, &mut out)?;
        Ok(out)
    }

    /// Carries out every pending intent of the group that is due.
    pub(crate) fn run_intents(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        // A device a commit (tentatively) removed commits nothing: its state stays at the
        // removal's parent only so that fork choice can still keep it (seed 436: it
        // answered a leave request from there and its commit won against its own removal).
        if super::removal::removed_parent(db, group)?.is_some() {
            return Ok(());
        }
        if self.is_admin(db, group, &self.address)? {
            store::wake_awaiting_admin(db, group, now)?;
        }
        for (id, intent) in store::due_intents(db, group, now)? {
            tracing::debug!(id, kind = intent.kind(), "running an intent");
            match self.execute(db, group, id, intent, out) {
                // The transaction is failing (or was interrupted): let it roll back whole.
                Err(error) if error.ends_the_call() => return Err(error),
                // Issued while we were an admin, on a branch a fork replaced: the grant
                // that made us one may be re-issued here (seed 695), so the intent waits.
                Err(GroupError::NotAdmin) => {
                    tracing::debug!(id, "an intent waits until we are an admin again");
                    store::await_admin(db, id)?;
                }
                Err(error) => {
                    let error = unless_rolled_back(db, error)?;
                    tracing::warn!(%error, "dropping an intent that cannot be committed");
                    store::delete_intent(db, id)?;
                }
                Ok(()) => {}
            }
        }
        Ok(())
    }

    /// Carries out one intent as a commit of ours, or forgets it when there is nothing left
    /// to commit.
    fn execute(
        &self,
        db: &Connection,
        gid: &GroupId,
        id: i64,
        intent: Intent,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let provider = self.provider(db);
        let mut group = load(&provider, gid)?;
        if !matches!(intent, Intent::SelfUpdate) {
            self.require_admin(db, gid)?;
        }
        let staged = match intent {
            Intent::Add { devices } => self.stage_add(db, &provider, &mut group, gid, devices)?,
            Intent::Remove { addresses } => self.stage_remove(db, &mut group, &addresses)?,
            Intent::Readd {
                key_package,
                identity,
            } => self.stage_readd(db, &provider, &mut group, gid, &key_package, &identity)?,
            Intent::Grant { addresses } => self.stage_grant(&provider, &mut group, &addresses)?,
            Intent::SelfUpdate => Some(self.stage_self_update(&provider, &mut group)?),
        };
        let Some(staged) = staged else {
            return settle_moot(db, gid, id, group.epoch().as_u64());
        };
        // Judged from the staged commit, as for incoming ones (`merge_staged`).
        let brings_answerers = group
            .pending_commit()
            .is_some_and(super::admin::brings_answerers);
        let hash = self.commit_own(db, &provider, &mut group, gid, staged.commit, out)?;
        store::settle_intent(db, id, group.epoch().as_u64() - 1, &hash)?;
        if let Some(welcome) = staged.welcome {
            self.send_welcome(db, gid, &group, &hash, welcome, out)?;
        }
        if brings_answerers {
            self.resend_leave_request(db, gid, out)?;
        }
        Ok(())
    }

    /// Stages a commit adding those of `devices` (KeyPackage bytes, expected identity key
    /// bytes) that are not members yet, with a Welcome; `None` if all of them are.
    fn stage_add(
        &self,
        db: &Connection,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        gid: &GroupId,
        devices: Vec<(Vec<u8>, [u8; 32])>,
    ) -> Result<Option<Staged>, GroupError> {
        let present: HashSet<Vec<u8>> = group.members().map(|m| m.signature_key).collect();
        let mut packages = Vec::new();
        let mut added = Vec::new();
        for (bytes, identity) in devices {
            let (package, address) = parse_key_package(provider, &bytes, &identity)?;
            if !present.contains(package.leaf_node().signature_key().as_slice()) {
                packages.push(package);
                added.push(address);
            }
        }
        if packages.is_empty() {
            return Ok(None);
        }
        let lineage = lineage::for_add(db, gid, group.epoch().as_u64(), CommitClass::AddOrContext)?;
        let (commit, welcome) =
            self.welcoming_commit(provider, group, Vec::new(), packages, &lineage)?;
        Ok(Some(Staged {
            commit,
            welcome: Some(Welcome {
                message: welcome,
                added,
            }),
        }))
    }

    /// Stages a commit removing the member devices (other than this one) with these
    /// delivery addresses; `None` if there is none.
    fn stage_remove(
        &self,
        db: &Connection,
        group: &mut MlsGroup,
        addresses: &[String],
    ) -> Result<Option<Staged>, GroupError> {
        let leaves: Vec<LeafNodeIndex> = members_of(group)
            .iter()
            .filter(|m| addresses.contains(&m.address) && m.address != self.address)
            .map(|m| LeafNodeIndex::new(m.leaf_index))
            .collect();
        if leaves.is_empty() {
            return Ok(None);
        }
        let commit = self.removal_commit(db, group, &leaves)?;
        Ok(Some(Staged::plain(commit)))
    }

    /// Stages a commit re-adding a device from `key_package` (signed by `identity`), with a
    /// Welcome; `None` if there is nothing to re-add (`readd_commit`).
    fn stage_readd(
        &self,
        db: &Connection,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        gid: &GroupId,
        key_package: &[u8],
        identity: &[u8; 32],
    ) -> Result<Option<Staged>, GroupError> {
        let lineage = lineage::for_add(db, gid, group.epoch().as_u64(), CommitClass::Removal)?;
        let staged = self
            .readd_commit(provider, group, key_package, identity, &lineage)?
            .map(|(commit, welcome, address)| Staged {
                commit,
                welcome: Some(Welcome {
                    message: welcome,
                    added: vec![address],
                }),
            });
        Ok(staged)
    }

    /// Stages a commit making these member devices admins; `None` if they all are already.
    fn stage_grant(
        &self,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        addresses: &[String],
    ) -> Result<Option<Staged>, GroupError> {
        Ok(self
            .grant_commit(provider, group, addresses)?
            .map(Staged::plain))
    }

    /// Stages a commit refreshing this device's leaf keys.
    fn stage_self_update(
        &self,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
    ) -> Result<Staged, GroupError> {
        let bundle = group
            .self_update(provider, &self.signer, LeafNodeParameters::default())
            .map_err(mls)?;
        Ok(Staged::plain(bundle.into_commit()))
    }

    /// After our commit `hash` that added devices merged into `group`: sends each of them
    /// the Welcome, the commit's join hash and the group's name.
    fn send_welcome(
        &self,
        db: &Connection,
        gid: &GroupId,
        group: &MlsGroup,
        hash: &[u8],
        welcome: Welcome,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let epoch = group.epoch().as_u64();
        let transcript = group
            .public_group()
            .group_context()
            .confirmed_transcript_hash();
        let Welcome { message, added } = welcome;
        for address in &added {
            super::branch_lost::welcomed(db, gid, address, epoch)?;
        }
        let welcome = serialize(&message)?;
        out.outgoing.extend(
            added
                .iter()
                .map(|address| Outgoing::to_device(address, FrameKind::Mls, welcome.clone())),
        );
        self.send_join_hash(gid, (epoch, transcript), hash, &added, out);
        self.resend_name(db, gid, out)
    }

    /// A commit that removes `removals` and adds `packages`, with a Welcome whose GroupInfo
    /// carries `lineage`; staged as our pending commit. Returns (commit, Welcome).
    pub(crate) fn welcoming_commit(
        &self,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        removals: Vec<LeafNodeIndex>,
        packages: Vec<KeyPackage>,
        lineage: &lineage::Lineage,
    ) -> Result<(MlsMessageOut, MlsMessageOut), GroupError> {
        let bundle = group
            .commit_builder()
            .propose_removals(removals)
            .propose_adds(packages)
            .force_self_update(true)
            .load_psks(provider.storage())
            .map_err(mls)?
            .create_group_info_with_extensions([lineage.to_extension()])
            .map_err(mls)?
            .build(provider.rand(), provider.crypto(), &self.signer, |_| true)
            .map_err(mls)?
            .stage_commit(provider)
            .map_err(mls)?;
        let welcome = bundle
            .to_welcome_msg()
            .ok_or_else(|| GroupError::Mls("a commit that adds without a Welcome".into()))?;
        Ok((bundle.into_commit(), welcome))
    }

    /// Sends the group's current name message again (same id and time), so that devices
    /// just added learn it; everyone else has seen that id and ignores it.
    fn resend_name(
        &self,
        db: &Connection,
        group: &GroupId,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let (name, sent_at, id): (String, i64, Vec<u8>) = db.query_row(
            "SELECT name, name_sent_at, name_message_id FROM kith_groups WHERE group_id = ?1",
            params![group.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let id: [u8; 16] = id.try_into().map_err(|_| GroupError::UnknownGroup)?;
        let message = AppMessage {
            id: MessageId(id),
            sent_at: sent_at as u64,
            content: Content::Rename { name },
        };
        out.outgoing.push(self.encrypt(db, group, &message, false)?);
        Ok(())
    }

    /// Merges a commit this device just created and sends it to the members of the parent
    /// epoch (so removed devices learn of their removal). Returns the commit's hash.
    fn commit_own(
        &self,
        db: &Connection,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        gid: &GroupId,
        commit: MlsMessageOut,
        out: &mut Output,
    ) -> Result<Vec<u8>, GroupError> {
        let parent = group.epoch().as_u64();
        let bytes = serialize(&commit)?;
        let class = group
            .pending_commit()
            .map(CommitClass::of)
            .ok_or_else(|| GroupError::Mls("no pending commit after creating one".into()))?;
        let hash = hash(provider, &bytes)?;
        out.outgoing.push(Outgoing {
            recipients: self.recipients(group),
            key: self.seal_key(db, gid, parent)?,
            frame: mls_frame(bytes.clone()),
        });
        let before = members_of(group);
        if let Some((parent_id, _)) = store::epoch_record(db, gid, parent)? {
            let rank = CommitRank {
                class,
                hash: hash.clone(),
            };
            super::own_commits::remember(db, gid, parent, &parent_id, &rank)?;
        }
        super::snapshot::snapshot(db, gid, parent)?;
        group.merge_pending_commit(provider).map_err(mls)?;
        let logged = LoggedCommit {
            class: class.to_i64(),
            hash: hash.clone(),
            message: bytes,
        };
        store::log_commit(db, gid, parent, &logged)?;
        self.after_merge(db, provider, group, gid, &before, out)?;
        Ok(hash)
    }
}

/// An intent with nothing left to commit at `epoch` (the devices to remove are gone, those
/// to add are in, the grant is held) was carried out by someone else's commit on our
/// chain. It is tied to the commit that made `epoch`, as if ours carried it, so that a fork
/// that drops that commit — by rollback, or a Welcome to a branch without it — asks again
/// (seed 6229: an admin's removal was moot after another admin's, and the branch the
/// group kept had neither). Beyond the horizon it is forgotten like any settled intent.
fn settle_moot(db: &Connection, gid: &GroupId, id: i64, epoch: u64) -> Result<(), GroupError> {
    let Some(parent) = epoch.checked_sub(1) else {
        return store::delete_intent(db, id);
    };
    let hash = match store::logged_commit(db, gid, parent)? {
        Some(commit) => Some(commit.hash),
        None => lineage::join_hash_at(db, gid, parent)?.map(|h| h.to_vec()),
    };
    match hash {
        Some(hash) => store::settle_intent(db, id, parent, &hash),
        None => store::delete_intent(db, id),
    }
}
