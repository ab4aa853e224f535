//! Beyond the horizon: forks deeper than [`super::HORIZON`] are repaired by re-adding.
//!
//! Rollback needs a snapshot, and snapshots are kept for H epochs only. Epoch ids, envelope
//! keys and the commit log are kept longer ([`DETECT_EPOCHS`]), which is what detects a deep
//! fork: a commit for a parent epoch we still hold a key and a logged commit for, but no
//! snapshot, that differs from the commit we merged there, comes from a peer on another
//! branch. Fork choice between the two commits at the divergence point (class read from
//! the commit's public content, then hash) says which side is on the losing branch. The
//! losing device asks to be re-added: it sends a fresh KeyPackage in a `RejoinRequest`
//! control frame under one admin's device key. That admin (if the device is still a member
//! there, with the same identity) removes its old leaf and adds the new package in one
//! commit and Welcomes it; the device replaces its stale group with the Welcome's. What the
//! device sent on the abandoned branch beyond the horizon is lost. An admin that does not
//! count the device, and holds another epoch id for the epoch the request names (the
//! first of the device's branch after the fork), answers with `BranchLost`: the device
//! drops the group instead of keeping a branch nobody else is on (fresh seed 10081).
use kith_crypto::certificate::VerifiedDevice;
use kith_crypto::frame::FrameKind;
use kith_crypto::mls::openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{epoch_id, KithProvider};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::commands::{load, members_of, parse_key_package};
use super::errors::GroupError;
use super::fork::{beats, CommitClass, CommitRank};
use super::intents::Intent;
use super::lineage::Lineage;
use super::store::{self, LoggedCommit};
use super::{Event, GroupEngine, GroupId, Outgoing, Output};

/// How many epochs back epoch ids, envelope keys and the commit log are kept, to detect a
/// peer on a branch that forked beyond the rollback horizon (4 × H).
pub const DETECT_EPOCHS: u64 = 4 * super::HORIZON;

// Messages are decryptable for as long as their envelopes open (docs/decisions.md).
const _: () = assert!(DETECT_EPOCHS as usize == kith_crypto::mls::MAX_PAST_EPOCHS);

/// The largest rejoin request accepted (a KeyPackage is a few hundred bytes; JSON doubles it).
pub const MAX_REJOIN_REQUEST_LEN: usize = 64 * 1024;

/// A device on a losing branch beyond the horizon asks an admin to re-add it: the payload
/// of a `FrameKind::Control` frame sealed to the admin's device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejoinRequest {
    /// The group id.
    pub group: Vec<u8>,
    /// A fresh KeyPackage of the requesting device (TLS-serialized).
    pub key_package: Vec<u8>,
    /// An epoch the requester holds (the first of its branch after the fork) and its
    /// epoch id: an admin that does not count the requester, and holds another id for
    /// that epoch, tells it that its branch is lost.
    /// Absent in requests from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<(u64, Vec<u8>)>,
}

impl RejoinRequest {
    /// The wire form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a rejoin request always serializes")
    }

    /// Parses bytes from the network; `None` if they are not a rejoin request.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        super::control::decode_capped(bytes, MAX_REJOIN_REQUEST_LEN)
    }
}

/// The rejoin-request table, for `forget_group`.
pub(crate) const TABLE: &str = "kith_rejoin_requested";

/// Creates the table that remembers a rejoin request was sent (idempotent).
pub(crate) fn migrate(db: &Connection) -> Result<(), GroupError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_rejoin_requested (group_id BLOB PRIMARY KEY);",
    )?;
    Ok(())
}

/// The fork-choice class of a commit we cannot process (its parent state is gone), read
/// from the proposals in its public content.
fn public_class(protocol: &ProtocolMessage) -> Option<CommitClass> {
    let ProtocolMessage::PublicMessage(message) = protocol else {
        return None;
    };
    let value = serde_json::to_value(message).ok()?;
    let proposals = value
        .pointer("/content/body/Commit/proposals")?
        .as_array()?;
    let mut class = CommitClass::SelfUpdate;
    for entry in proposals {
        let kind = entry
            .get("Proposal")
            .and_then(|p| p.as_object())
            .and_then(|p| p.keys().next().cloned())
            .unwrap_or_default();
        match kind.as_str() {
            "Remove" => return Some(CommitClass::Removal),
            "Update" => {}
            _ => class = CommitClass::AddOrContext,
        }
    }
    Some(class)
}

impl GroupEngine {
    /// A commit for `parent`, which we moved past beyond the rollback horizon, differs from
    /// ours there. If it wins fork choice and we are no admin, or our branch removes us,
    /// ask an admin to re-add us (as DESIGN.md says); otherwise tell the other members
    /// which commit we hold, so that the side that must re-join learns it
    /// (`fork_notice.rs`: an admin's deep branch is not given up for a shallow one).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn diverged(
        &self,
        db: &Connection,
        gid: &GroupId,
        parent: u64,
        protocol: &ProtocolMessage,
        hash: Vec<u8>,
        incumbent: &LoggedCommit,
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let Some(class) = public_class(protocol) else {
            return Ok(());
        };
        let theirs = CommitRank { class, hash };
        let ours = CommitRank {
            class: CommitClass::from_i64(incumbent.class),
            hash: incumbent.hash.clone(),
        };
        // A branch that (tentatively) removes us has no admin in us: our notice would only
        // pull shallow members onto a branch nobody holds (seed 13756: an admin removed on
        // its branch, past the horizon only because it had gone deeper on another branch
        // first, sent the group back to its dead branch).
        let removed = super::removal::removed_parent(db, gid)?.is_some();
        if beats(&theirs, &ours) && (removed || !self.is_admin(db, gid, &self.address)?) {
            return self.request_rejoin(db, gid, parent, &[], out);
        }
        self.send_fork_notice(db, gid, parent, incumbent, out)
    }

    /// We are on the losing side of a fork on `parent`: ask the admins to re-add us with a
    /// fresh KeyPackage (once until we rejoin) — every admin we know (at most
    /// [`super::MAX_NOTICE_ADMINS`], members of our branch first) and `winning_admins`, the
    /// admins a fork notice says the winning branch has.
    pub(crate) fn request_rejoin(
        &self,
        db: &Connection,
        gid: &GroupId,
        parent: u64,
        winning_admins: &[String],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        // Our branch is lost from `parent` on, and so is every device we added on it: tell
        // them (seed 8879: an admin asked to be re-added, and the devices it had added on
        // the lost branch kept it, counting a member that had long left it).
        self.announce_branch_lost(db, gid, parent, out)?;
        if already_requested(db, gid)? {
            return Ok(());
        }
        let group = load(&self.provider(db), gid)?;
        // Every admin we know, members of our branch first: one our branch removed may be
        // on the winning branch, which can count us (seed 382: the winner had been removed
        // on the branch the device was lost on).
        let members: Vec<String> = members_of(&group).into_iter().map(|m| m.address).collect();
        let mut asked: Vec<(bool, String)> = super::admin::admins_of(&group)
            .into_iter()
            .chain(winning_admins.iter().cloned())
            .filter(|a| *a != self.address)
            .map(|a| (!members.contains(&a), a))
            .collect();
        asked.sort();
        asked.dedup();
        asked.truncate(super::MAX_NOTICE_ADMINS);
        if asked.is_empty() {
            tracing::warn!("on a losing branch beyond the horizon and no admin to ask");
            return Ok(());
        }
        let key_package = self.key_packages(db, 1)?.remove(0);
        // The first epoch of our branch after the fork, which an admin on the winning
        // branch is the likeliest to hold another id for (it may be behind our epoch).
        let held = match store::epoch_record(db, gid, parent + 1)? {
            Some((id, _)) => (parent + 1, id.to_vec()),
            None => {
                let id = epoch_id(&group, self.provider(db).crypto())?;
                (group.epoch().as_u64(), id.to_vec())
            }
        };
        let request = RejoinRequest {
            group: gid.0.clone(),
            key_package,
            held: Some(held),
        };
        db.execute(
            "INSERT OR IGNORE INTO kith_rejoin_requested (group_id) VALUES (?1)",
            params![gid.0],
        )?;
        for (_, admin) in asked {
            out.outgoing.push(Outgoing::to_device(
                &admin,
                FrameKind::Control,
                request.encode(),
            ));
        }
        out.events.push(Event::RejoinRequested {
            group: gid.clone(),
            parent_epoch: parent,
        });
        Ok(())
    }

    /// A rejoin request arrived under our device key: if we are an admin and the device is
    /// a member with the same identity, plan its re-add.
    pub(crate) fn receive_rejoin(
        &self,
        db: &Connection,
        now: u64,
        payload: &[u8],
        out: &mut Output,
    ) -> Result<(), GroupError> {
        let Some(request) = RejoinRequest::decode(payload) else {
            tracing::debug!("ignoring a malformed control frame");
            return Ok(());
        };
        let gid = GroupId(request.group);
        if !store::is_member_group(db, &gid)? || !self.is_admin(db, &gid, &self.address)? {
            return Ok(());
        }
        let provider = self.provider(db);
        let members = members_of(&load(&provider, &gid)?);
        let package = KeyPackageIn::tls_deserialize_exact(request.key_package.as_slice()).ok();
        let Some(device) = package.and_then(|p| requester(&provider, p)) else {
            tracing::debug!("ignoring a rejoin request without a valid KeyPackage");
            return Ok(());
        };
        let member = members
            .iter()
            .find(|m| m.address == device.delivery_address && m.identity == device.identity_key);
        let Some(member) = member else {
            // Not one of us: if it holds an epoch our chain holds another id for, it sits
            // on a branch that lost, counting itself a member; tell it (fresh seed 10081:
            // a device removed on the winning branch asked, was ignored, and stayed alone).
            return match request.held {
                Some((epoch, epoch_id))
                    if super::branch_lost::other_id_held(db, &gid, epoch, &epoch_id)?
                        == Some(true) =>
                {
                    tracing::debug!(
                        epoch,
                        "a device that is no member here asks to rejoin: its branch is lost"
                    );
                    self.send_branch_lost(db, &gid, device.delivery_address, epoch, epoch_id, out)
                }
                _ => {
                    tracing::debug!("ignoring a rejoin request from a device that is not a member");
                    Ok(())
                }
            };
        };
        let intent = Intent::Readd {
            key_package: request.key_package,
            identity: member.identity.to_bytes(),
        };
        store::add_intent(db, &gid, &intent, now)?;
        self.run_intents(db, now, &gid, out)
    }

    /// The commit that re-adds a device: removes its old leaf and adds its new package.
    /// `None` when the package's leaf is already in the tree (the re-add happened).
    pub(crate) fn readd_commit(
        &self,
        provider: &KithProvider<'_>,
        group: &mut MlsGroup,
        key_package: &[u8],
        identity: &[u8; 32],
        lineage: &Lineage,
    ) -> Result<Option<(MlsMessageOut, MlsMessageOut, String)>, GroupError> {
        let (package, address) = parse_key_package(provider, key_package, identity)?;
        // The TLS form is the key with a one-byte length in front.
        let new_key = package
            .leaf_node()
            .encryption_key()
            .tls_serialize_detached()
            .map_err(super::errors::malformed)?;
        let present = group.members().any(|m| {
            new_key.len() == m.encryption_key.len() + 1 && new_key.ends_with(&m.encryption_key)
        });
        if present {
            return Ok(None);
        }
        let old: Vec<LeafNodeIndex> = members_of(group)
            .iter()
            .filter(|m| m.address == address)
            .map(|m| LeafNodeIndex::new(m.leaf_index))
            .collect();
        let (commit, welcome) =
            self.welcoming_commit(provider, group, old, vec![package], lineage)?;
        Ok(Some((commit, welcome, address)))
    }
}

/// The device a rejoin request's KeyPackage belongs to, if the package and its
/// certificate verify.
fn requester(provider: &KithProvider<'_>, package: KeyPackageIn) -> Option<VerifiedDevice> {
    let package = package
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .ok()?;
    let leaf = package.leaf_node();
    kith_crypto::mls::verify_leaf_credential(leaf.credential(), leaf.signature_key(), None).ok()
}

/// Whether we asked to be re-added and have not re-joined since.
pub(crate) fn already_requested(db: &Connection, gid: &GroupId) -> Result<bool, GroupError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM kith_rejoin_requested WHERE group_id = ?1",
            params![gid.0],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejoin_requests_round_trip_and_bad_bytes_are_refused() {
        let request = RejoinRequest {
            group: vec![7; 16],
            key_package: vec![1, 2, 3],
            held: Some((9, vec![4; 32])),
        };
        assert_eq!(RejoinRequest::decode(&request.encode()), Some(request));
        let old = br#"{"group":[1],"key_package":[2]}"#;
        assert_eq!(RejoinRequest::decode(old).map(|r| r.held), Some(None));
        assert_eq!(RejoinRequest::decode(b"not json"), None);
        assert_eq!(RejoinRequest::decode(br#"{"group":[1]}"#), None);
        let huge = vec![b' '; MAX_REJOIN_REQUEST_LEN + 1];
        assert_eq!(RejoinRequest::decode(&huge), None);
    }
}
