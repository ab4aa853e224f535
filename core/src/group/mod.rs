//! The group engine: MLS groups over relays that order nothing, sans-IO.
//!
//! [`GroupEngine`] never touches a socket or a clock. Commands ([`GroupEngine::create_group`],
//! [`GroupEngine::send`], ...) and incoming frames ([`GroupEngine::receive`]) come in, with
//! the time and an RNG as arguments; out come [`Outgoing`] frames for the edge to seal and
//! send, and [`Event`]s for the UI. Every call works on a `&rusqlite::Connection` that the
//! caller has put inside `BEGIN IMMEDIATE` (see `kith_crypto::mls::begin_immediate`): one
//! transaction per command or incoming message covers openmls's state and the engine's
//! tables, so a crash never tears state.
//!
//! The rules (DESIGN.md, "Groups over relays that do not order messages"; `docs/groups.md`):
//! commits travel as PublicMessage and application messages as PrivateMessage; fork choice
//! by (class, commit hash) with snapshots and rollback within [`HORIZON`] epochs; envelopes
//! no current key opens are stashed and offered again after each merge; application
//! messages are shown once per message id; a peer that is behind gets the commits it lacks.
mod admin;
mod branch_lost;
mod commands;
mod control;
mod errors;
mod fork;
mod fork_notice;
mod intents;
mod join_hash;
mod kept_notices;
mod lineage;
mod own_commits;
mod past_membership;
mod queries;
mod randomness;
mod receive;
mod removal;
mod repair;
mod snapshot;
mod store;
mod verified_leaves;
mod welcome;

use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::identity::IdentityPublicKey;
use kith_crypto::mls::DeviceSigningKey;
use zeroize::Zeroizing;

pub use admin::{decode_admins, encode_admins, MAX_ADDRESS_LEN, MAX_ADMINS};
pub use branch_lost::{BranchLost, MAX_BRANCH_LOST_LEN};
pub use commands::STASH_TTL;
pub use errors::GroupError;
pub use fork::{beats, choose_fork, CommitClass, CommitRank};
pub use fork_notice::{ForkNotice, MAX_FORK_NOTICE_LEN, MAX_NOTICE_ADMINS};
pub use join_hash::{
    JoinHash, MAX_JOIN_HASH_LEN, MAX_PENDING as MAX_PENDING_JOIN_HASHES, MAX_WAITING_WELCOMES,
};
pub use lineage::{Lineage, LineageEntry, LINEAGE_EXTENSION_TYPE, MAX_LINEAGE_ENTRIES};
pub use receive::LEAVE_STEP_SECS;
pub use repair::{RejoinRequest, DETECT_EPOCHS, MAX_REJOIN_REQUEST_LEN};
pub use store::{migrate, HORIZON};

use crate::content::AppMessage;

/// A group's id (the MLS group id bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub Vec<u8>);

impl std::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupId(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The key the edge must seal an [`Outgoing`] frame with.
#[derive(Clone, PartialEq, Eq)]
pub enum SealKey {
    /// The envelope key exported from a group epoch (group traffic).
    Epoch {
        /// The group.
        group: GroupId,
        /// The epoch the key belongs to.
        epoch: u64,
        /// The 32-byte envelope key.
        key: Zeroizing<[u8; 32]>,
    },
    /// The recipient device's own envelope key (Welcomes).
    Device {
        /// The recipient device's delivery address.
        address: String,
    },
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealKey::Epoch { group, epoch, .. } => write!(f, "Epoch({group:?}, {epoch})"),
            SealKey::Device { .. } => f.write_str("Device(..)"),
        }
    }
}

/// A frame to seal and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Delivery addresses of the recipient devices.
    pub recipients: Vec<String>,
    /// The key to seal with.
    pub key: SealKey,
    /// The frame to put inside the envelope.
    pub frame: Frame,
}

impl Outgoing {
    /// A frame of `kind` sealed to one device's own envelope key: a Welcome or a
    /// control frame meant for that device alone.
    pub(crate) fn to_device(address: &str, kind: FrameKind, payload: Vec<u8>) -> Self {
        Outgoing {
            recipients: vec![address.to_owned()],
            key: SealKey::Device {
                address: address.to_owned(),
            },
            frame: Frame { kind, payload },
        }
    }
}

/// How an incoming envelope was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedWith {
    /// With the envelope key of this group epoch (one of [`GroupEngine::epoch_keys`]).
    Epoch {
        /// The group.
        group: GroupId,
        /// The epoch.
        epoch: u64,
    },
    /// With this device's own envelope key.
    Device,
}

/// An opened envelope handed to [`GroupEngine::receive`].
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The frame inside.
    pub frame: Frame,
    /// Which key opened it.
    pub opened_with: OpenedWith,
    /// Set when the envelope came from [`Output::reopen`]: the stash entry to drop.
    pub stash_id: Option<i64>,
}

/// An envelope that no key opened when it arrived, offered again after a merge.
#[derive(Debug, Clone)]
pub struct StashedEnvelope {
    /// The stash entry; pass it back in [`Incoming::stash_id`] once the envelope opens.
    pub id: i64,
    /// The envelope bytes as given to [`GroupEngine::stash`].
    pub envelope: Vec<u8>,
}

/// An envelope key the edge should try on incoming group envelopes.
#[derive(Clone)]
pub struct EpochKey {
    /// The group.
    pub group: GroupId,
    /// The epoch.
    pub epoch: u64,
    /// The 32-byte envelope key.
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpochKey({:?}, {})", self.group, self.epoch)
    }
}

/// A member device of a group, from its verified certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The device's delivery address.
    pub address: String,
    /// The user's identity key.
    pub identity: IdentityPublicKey,
    /// The device id.
    pub device_id: DeviceId,
    /// The device's leaf index in the ratchet tree.
    pub leaf_index: u32,
}

/// A device to add: its KeyPackage and the identity key we know for its owner.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// The TLS-serialized KeyPackage, as made by [`GroupEngine::key_packages`].
    pub key_package: Vec<u8>,
    /// The identity key we know for the contact that owns the device.
    pub identity: IdentityPublicKey,
}

/// Something the UI should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// This device joined a group from a Welcome.
    Joined {
        /// The group.
        group: GroupId,
    },
    /// The group moved to a new epoch.
    EpochChanged {
        /// The group.
        group: GroupId,
        /// The new epoch.
        epoch: u64,
    },
    /// Devices joined the group.
    MembersAdded {
        /// The group.
        group: GroupId,
        /// Their delivery addresses.
        addresses: Vec<String>,
    },
    /// Devices left or were removed from the group.
    MembersRemoved {
        /// The group.
        group: GroupId,
        /// Their delivery addresses.
        addresses: Vec<String>,
    },
    /// This device is no longer a member of the group.
    Removed {
        /// The group.
        group: GroupId,
    },
    /// A better commit arrived for an epoch we had moved past; we rolled back and applied it.
    ForkResolved {
        /// The group.
        group: GroupId,
        /// The parent epoch the chains diverged at.
        parent_epoch: u64,
    },
    /// An application message to show (each message id at most once).
    Message {
        /// The group.
        group: GroupId,
        /// The sending device's address.
        sender: String,
        /// The sending user's identity key.
        identity: IdentityPublicKey,
        /// The message.
        message: AppMessage,
    },
    /// The group's name changed.
    Renamed {
        /// The group.
        group: GroupId,
        /// The new name.
        name: String,
    },
    /// This device found itself on a branch that lost fork choice beyond the rollback
    /// horizon and asked an admin to re-add it (a Welcome will replace the group's state).
    RejoinRequested {
        /// The group.
        group: GroupId,
        /// The parent epoch where the branches diverged.
        parent_epoch: u64,
    },
    /// A member device asked to leave; a member will commit its removal.
    LeaveRequested {
        /// The group.
        group: GroupId,
        /// The leaving device's address.
        address: String,
    },
}

/// What one call to the engine produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Frames to seal and send.
    pub outgoing: Vec<Outgoing>,
    /// Events for the UI.
    pub events: Vec<Event>,
    /// Stashed envelopes to try to open again (epoch keys changed).
    pub reopen: Vec<StashedEnvelope>,
}

impl Output {
    fn extend(&mut self, other: Output) {
        self.outgoing.extend(other.outgoing);
        self.events.extend(other.events);
        self.reopen.extend(other.reopen);
    }
}

/// This device's side of every group it is in.
pub struct GroupEngine {
    signer: DeviceSigningKey,
    certificate: DeviceCertificate,
    address: String,
    /// Where every MLS provider's randomness comes from (`randomness.rs`).
    randomness: randomness::Randomness,
}

impl std::fmt::Debug for GroupEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupEngine { .. }")
    }
}

impl GroupEngine {
    /// The engine for this device: its MLS signing key and its certificate, which must
    /// verify and name that key.
    pub fn new(
        signer: DeviceSigningKey,
        certificate: DeviceCertificate,
    ) -> Result<Self, GroupError> {
        let verified = certificate
            .verify(None)
            .map_err(GroupError::OwnCertificate)?;
        if verified.device_signature_key != signer.public_key() {
            return Err(GroupError::OwnCertificate(
                kith_crypto::certificate::CertificateError::LeafKeyMismatch,
            ));
        }
        Ok(Self {
            signer,
            certificate,
            address: verified.delivery_address,
            randomness: randomness::Randomness::default(),
        })
    }

    /// This device's delivery address.
    pub fn address(&self) -> &str {
        &self.address
    }
}
