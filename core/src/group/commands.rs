//! Commands from this device: create, add, remove, self-update, leave, rename, send; and the
//! bookkeeping every merge shares. The commits behind add, remove and self-update are
//! intents (`intents.rs`).
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::mls::openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{
    credential_with_key, epoch_id, export_epoch_key, group_create_config_with,
    verify_leaf_credential, EpochExport, KithProvider, MAX_ADDS_PER_COMMIT,
};
use rand::{CryptoRng, RngCore};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::errors::{malformed, mls, GroupError};
use super::intents::Intent;
use super::store;
use super::{Event, GroupEngine, GroupId, MemberInfo, NewDevice, Output, SealKey};
use super::{Outgoing, StashedEnvelope};
use crate::content::{AppMessage, Content, MessageId};

/// What an application message carries around the content: the sender's epoch id, for
/// anti-entropy (the epoch number is in the MLS header).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AppEnvelope {
    /// The sender's current epoch id when it sent the message.
    pub(crate) epoch_id: [u8; 32],
    /// The message.
    pub(crate) message: AppMessage,
}

pub(crate) fn load(provider: &KithProvider<'_>, group: &GroupId) -> Result<MlsGroup, GroupError> {
    MlsGroup::load(provider.storage(), &MlsGroupId::from_slice(&group.0))
        .map_err(mls)?
        .ok_or(GroupError::UnknownGroup)
}

pub(crate) use kith_crypto::mls::openmls::prelude::GroupId as MlsGroupId;

/// The epoch of the group state we hold, from its stored group context alone: `load`
/// also decodes every kept epoch's message secrets, which is most of its cost, so a
/// caller that needs only the epoch reads this.
pub(crate) fn held_epoch(provider: &KithProvider<'_>, group: &GroupId) -> Result<u64, GroupError> {
    fn context<S: kith_crypto::mls::openmls::storage::StorageProvider>(
        storage: &S,
        group: &MlsGroupId,
    ) -> Result<Option<GroupContext>, S::Error> {
        storage.group_context(group)
    }
    context(provider.storage(), &MlsGroupId::from_slice(&group.0))
        .map_err(mls)?
        .map(|context| context.epoch().as_u64())
        .ok_or(GroupError::UnknownGroup)
}

/// The group's members, each from its verified certificate (verified once per process:
/// `verified_leaves.rs`).
pub(crate) fn members_of(group: &MlsGroup) -> Vec<MemberInfo> {
    let mut members: Vec<MemberInfo> = group
        .members()
        .filter_map(|m| {
            let key = SignaturePublicKey::from(m.signature_key.clone());
            let device = super::verified_leaves::verified_leaf(&m.credential, &key)?;
            Some(MemberInfo {
                address: device.delivery_address,
                identity: device.identity_key,
                device_id: device.device_id,
                leaf_index: m.index.u32(),
            })
        })
        .collect();
    members.sort_by(|a, b| a.address.cmp(&b.address));
    members
}

pub(crate) fn hash(provider: &KithProvider<'_>, bytes: &[u8]) -> Result<Vec<u8>, GroupError> {
    provider
        .crypto()
        .hash(HashType::Sha2_256, bytes)
        .map_err(mls)
}

pub(crate) fn serialize(message: &MlsMessageOut) -> Result<Vec<u8>, GroupError> {
    message.tls_serialize_detached().map_err(malformed)
}

/// An MLS frame carrying `payload`.
pub(crate) fn mls_frame(payload: Vec<u8>) -> Frame {
    Frame {
        kind: FrameKind::Mls,
        payload,
    }
}

impl GroupEngine {
    /// Creates a group with this device as its only member and `name` as its name.
    pub fn create_group(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        name: &str,
    ) -> Result<(GroupId, Output), GroupError> {
        let provider = self.provider(db);
        let context = super::admin::initial_context(&self.address)?;
        let group = MlsGroup::new(
            &provider,
            &self.signer,
            &group_create_config_with(&provider, context),
            credential_with_key(&self.certificate),
        )
        .map_err(mls)?;
        let gid = GroupId(group.group_id().as_slice().to_vec());
        db.execute(
            "INSERT INTO kith_groups (group_id, name, name_sent_at, name_message_id)
             VALUES (?1, ?2, ?3, ?4)",
            params![gid.0, name, now as i64, &MessageId::generate(rng).0[..]],
        )?;
        let mut out = Output::default();
        self.record_current_epoch(db, &provider, &group, &gid)?;
        out.events.push(Event::EpochChanged {
            group: gid.clone(),
            epoch: group.epoch().as_u64(),
        });
        Ok((gid, out))
    }

    /// Adds devices from their KeyPackages: one commit per batch of `MAX_ADDS_PER_COMMIT`
    /// (and one Welcome to each device). Each KeyPackage's certificate must verify and be
    /// signed by the identity given with it.
    pub fn add_devices(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
        devices: Vec<NewDevice>,
    ) -> Result<Output, GroupError> {
        if devices.is_empty() {
            return Err(GroupError::EmptyInput);
        }
        self.require_admin(db, group)?;
        let provider = self.provider(db);
        for device in &devices {
            parse_key_package(&provider, &device.key_package, &device.identity.to_bytes())?;
        }
        let devices: Vec<(Vec<u8>, [u8; 32])> = devices
            .into_iter()
            .map(|d| (d.key_package, d.identity.to_bytes()))
            .collect();
        // Adding N in one commit is super-linear (DESIGN.md): one commit per batch.
        let intents = devices
            .chunks(MAX_ADDS_PER_COMMIT)
            .map(|batch| Intent::Add {
                devices: batch.to_vec(),
            })
            .collect();
        self.issue(db, now, group, intents)
    }

    /// Removes the member devices with these delivery addresses in one commit.
    pub fn remove_devices(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
        addresses: Vec<String>,
    ) -> Result<Output, GroupError> {
        self.require_admin_over(db, group, &addresses)?;
        self.issue(db, now, group, vec![Intent::Remove { addresses }])
    }

    /// Commits fresh leaf keys for this device.
    pub fn self_update(
        &self,
        db: &Connection,
        now: u64,
        group: &GroupId,
    ) -> Result<Output, GroupError> {
        self.issue(db, now, group, vec![Intent::SelfUpdate])
    }

    /// Asks the group to remove this device (an application request, since standalone
    /// proposals would block sending in openmls). An [`Event::Removed`] follows once a
    /// member commits the removal. Until then the request is sent again after each commit
    /// that brings new members or admins.
    pub fn leave(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        group: &GroupId,
    ) -> Result<Output, GroupError> {
        let (id, out) = self.send(db, now, rng, group, Content::LeaveRequest)?;
        let request = AppMessage {
            id,
            sent_at: now,
            content: Content::LeaveRequest,
        };
        super::removal::set_leaving(db, group, &request.encode())?;
        Ok(out)
    }

    /// Renames the group (an application message; the latest by (time, id) wins everywhere;
    /// its time is later than the name this device shows, so a rename always replaces it).
    pub fn rename(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        group: &GroupId,
        name: &str,
    ) -> Result<Output, GroupError> {
        // A rename must beat the name this device shows, even within the same second: its
        // time is at least one past that name's (renames are ordered by time, then id).
        let shown_at: i64 = db
            .query_row(
                "SELECT name_sent_at FROM kith_groups WHERE group_id = ?1",
                params![group.0],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(GroupError::UnknownGroup)?;
        let sent_at = now.max((shown_at as u64).saturating_add(1));
        let content = Content::Rename { name: name.into() };
        Ok(self.send(db, sent_at, rng, group, content)?.1)
    }

    /// Sends application content to the group; returns the message's id.
    pub fn send(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        group: &GroupId,
        content: Content,
    ) -> Result<(MessageId, Output), GroupError> {
        super::removal::require_active(db, group)?;
        let message = AppMessage {
            id: MessageId::generate(rng),
            sent_at: now,
            content,
        };
        store::mark_seen(db, group, &message.id.0)?;
        let mut out = Output::default();
        if let Content::Rename { name } = &message.content {
            if store::apply_rename(db, group, name, message.sent_at, &message.id.0)? {
                out.events.push(Event::Renamed {
                    group: group.clone(),
                    name: name.clone(),
                });
            }
        }
        out.outgoing.push(self.encrypt(db, group, &message, true)?);
        Ok((message.id, out))
    }

    /// Encrypts an application message in the current epoch (and remembers it, when
    /// `remember`, so it can be re-sent if fork choice drops this epoch).
    pub(crate) fn encrypt(
        &self,
        db: &Connection,
        group: &GroupId,
        message: &AppMessage,
        remember: bool,
    ) -> Result<Outgoing, GroupError> {
        let provider = self.provider(db);
        let mut mls_group = load(&provider, group)?;
        let epoch = mls_group.epoch().as_u64();
        let envelope = AppEnvelope {
            epoch_id: epoch_id(&mls_group, provider.crypto())?,
            message: message.clone(),
        };
        let encoded = serde_json::to_vec(&envelope)?;
        let ciphertext = mls_group
            .create_message(&provider, &self.signer, &encoded)
            .map_err(mls)?;
        if remember {
            db.execute(
                "INSERT OR REPLACE INTO kith_sent (group_id, message_id, epoch, message)
                 VALUES (?1, ?2, ?3, ?4)",
                params![group.0, &message.id.0[..], epoch as i64, message.encode()],
            )?;
        }
        Ok(Outgoing {
            recipients: self.recipients(&mls_group),
            key: self.seal_key(db, group, epoch)?,
            frame: mls_frame(serialize(&ciphertext)?),
        })
    }

    /// Runs what is due at `now`: delayed commits (leave requests this device is to answer,
    /// re-issued intents) and expiry of old stashed envelopes.
    pub fn handle_timeout(&self, db: &Connection, now: u64) -> Result<Output, GroupError> {
        store::expire_stash(db, now.saturating_sub(STASH_TTL))?;
        let provider = self.provider(db);
        for gid in super::removal::expired(db, now, now.saturating_sub(STASH_TTL))? {
            super::control::drop_group(&provider, db, &gid)?;
        }
        let mut out = Output::default();
        for group in self.groups(db)? {
            self.run_intents(db, now, &group, &mut out)?;
        }
        self.finish(db, &mut out)?;
        Ok(out)
    }

    /// Bookkeeping after any merge: record the new epoch, prune beyond the horizon, and
    /// report membership changes.
    pub(crate) fn after_merge(
        &self,
        db: &Connection,
        provider: &KithProvider<'_>,
        group: &MlsGroup,
        gid: &GroupId,
        before: &[MemberInfo],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let epoch = group.epoch().as_u64();
        self.record_current_epoch(db, provider, group, gid)?;
        store::prune(db, gid, epoch)?;
        let after = members_of(group);
        let added: Vec<String> = after
            .iter()
            .filter(|m| {
                !before
                    .iter()
                    .any(|b| b.leaf_index == m.leaf_index && b.address == m.address)
            })
            .map(|m| m.address.clone())
            .collect();
        let removed: Vec<String> = before
            .iter()
            .filter(|b| {
                !after
                    .iter()
                    .any(|m| b.leaf_index == m.leaf_index && b.address == m.address)
            })
            .map(|m| m.address.clone())
            .collect();
        out.events.push(Event::EpochChanged {
            group: gid.clone(),
            epoch,
        });
        if !added.is_empty() {
            out.events.push(Event::MembersAdded {
                group: gid.clone(),
                addresses: added,
            });
        }
        if !removed.is_empty() {
            out.events.push(Event::MembersRemoved {
                group: gid.clone(),
                addresses: removed,
            });
        }
        Ok(())
    }

    pub(crate) fn record_current_epoch(
        &self,
        db: &Connection,
        provider: &KithProvider<'_>,
        group: &MlsGroup,
        gid: &GroupId,
    ) -> Result<(), GroupError> {
        let id = epoch_id(group, provider.crypto())?;
        let key = export_epoch_key(group, provider.crypto(), EpochExport::EnvelopeKey)?;
        let epoch = group.epoch().as_u64();
        store::record_epoch(db, gid, epoch, &id, &key)?;
        let members: Vec<String> = members_of(group).into_iter().map(|m| m.address).collect();
        super::fork_notice::record_members(db, gid, epoch, &members)
    }

    /// Every member's address but this device's.
    pub(crate) fn recipients(&self, group: &MlsGroup) -> Vec<String> {
        members_of(group)
            .into_iter()
            .map(|m| m.address)
            .filter(|a| *a != self.address)
            .collect()
    }

    pub(crate) fn seal_key(
        &self,
        db: &Connection,
        group: &GroupId,
        epoch: u64,
    ) -> Result<SealKey, GroupError> {
        let (_, key) = store::epoch_record(db, group, epoch)?.ok_or(GroupError::UnknownGroup)?;
        Ok(SealKey::Epoch {
            group: group.clone(),
            epoch,
            key,
        })
    }

    /// Ends a call: if any epoch key changed, offer the stashed envelopes again.
    pub(crate) fn finish(&self, db: &Connection, out: &mut Output) -> Result<(), GroupError> {
        let changed = out
            .events
            .iter()
            .any(|e| matches!(e, Event::EpochChanged { .. } | Event::Joined { .. }));
        if changed {
            offer_stash(db, out)?;
        }
        Ok(())
    }
}

/// Offers the stashed envelopes again in `out.reopen` (once per call): a key to open
/// them may have come.
pub(crate) fn offer_stash(db: &Connection, out: &mut Output) -> Result<(), GroupError> {
    if out.reopen.is_empty() {
        out.reopen = store::stashed(db)?
            .into_iter()
            .map(|(id, envelope)| StashedEnvelope { id, envelope })
            .collect();
    }
    Ok(())
}

/// How long an envelope no key opens is kept before it is given up (7 days).
pub const STASH_TTL: u64 = 7 * 24 * 3600;

/// Parses and validates a KeyPackage and checks its leaf's certificate against the identity
/// we know for its owner. Returns the package and the device's delivery address.
pub(crate) fn parse_key_package(
    provider: &KithProvider<'_>,
    bytes: &[u8],
    identity: &[u8; 32],
) -> Result<(KeyPackage, String), GroupError> {
    let package = KeyPackageIn::tls_deserialize_exact(bytes)
        .map_err(malformed)?
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(mls)?;
    let expected = kith_crypto::identity::IdentityPublicKey::from_bytes(identity)
        .map_err(|e| GroupError::CertificateMismatch(e.into()))?;
    let leaf = package.leaf_node();
    let device = verify_leaf_credential(leaf.credential(), leaf.signature_key(), Some(&expected))
        .map_err(GroupError::CertificateMismatch)?;
    Ok((package, device.delivery_address))
}
