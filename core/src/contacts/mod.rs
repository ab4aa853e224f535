//! Contacts and the invite/join handshake, sans-IO: functions take the account database
//! (inside the caller's transaction), the time and an RNG, and return the frames to seal
//! and send, the events to show and, for group invites, the device to add. The client
//! (`client/contacts.rs`) seals, queues and applies them.
//!
//! The handshake (docs/client-core.md has the byte layout, crypto-audit/PROTOCOL.md §4 the
//! keys):
//! 1. the inviter makes an invite: a one-time secret and an ephemeral channel key, stored
//!    until it expires (and [`REFUSAL_GRACE`] after, to refuse late joiners explicitly);
//! 2. the joiner parses the link, refuses it if expired, makes its channel key, and sends
//!    a join request — its channel key and, sealed on the channel, its [`wire::Card`]
//!    (certificate, envelope key, [`STOCK`] KeyPackages plus a last-resort one) — in an
//!    envelope sealed under the first-message key (SKESK, `SymmetricKind::Invite`);
//! 3. the inviter opens it (the client tries the first-message key of every live invite),
//!    verifies the card's certificate and KeyPackages, refuses a used or expired invite
//!    with an explicit reply, and otherwise marks the invite used and either stores the
//!    joiner as a verified contact and answers with its own card (contact invite) or adds
//!    the joiner's device to the group (group invite);
//! 4. the joiner checks that the inviter's identity matches the link's fingerprint and
//!    that its certificate verifies, and stores it as a verified contact.
//!
//! Both sides show the channel's 6-digit SAS. A duplicate of any message changes nothing.
pub(crate) mod errors;
pub(crate) mod store;
pub mod wire;

use kith_crypto::certificate::{DeviceCertificate, VerifiedDevice};
use kith_crypto::channel::{first_message_key, ChannelKey, Role};
use kith_crypto::envelope::DevicePublicKey;
use kith_crypto::fingerprint::Fingerprint;
use kith_crypto::frame::{Frame, FrameKind};
use kith_crypto::identity::IdentityPublicKey;
use kith_crypto::invite::{InviteKind, InvitePayload, InviteSecret};
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;
use kith_crypto::mls::openmls::prelude::{KeyPackageIn, OpenMlsProvider as _, ProtocolVersion};
use kith_crypto::mls::{verify_leaf_credential, KithProvider};
use rand::{CryptoRng, RngCore};
use rusqlite::Connection;
use zeroize::Zeroizing;

pub use errors::ContactError;
use wire::{Card, HandshakeMessage, Refusal, ReplyBody};

use crate::events::Event;
use crate::group::{GroupEngine, GroupId, NewDevice};

/// How many ordinary KeyPackages of each contact device we keep (plus one last-resort).
pub const STOCK: usize = 3;
/// The longest an invite may live (30 days).
pub const MAX_INVITE_TTL: u64 = 30 * 24 * 3600;
/// How long after expiry the inviter still opens join requests, to refuse them clearly.
pub const REFUSAL_GRACE: u64 = 7 * 24 * 3600;

/// A contact: a user whose identity key we know, and their devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The local row id.
    pub id: i64,
    /// The contact's identity key.
    pub identity: IdentityPublicKey,
    /// True if made by an invite handshake (the key came over a channel the link
    /// authenticated).
    pub is_verified: bool,
    /// When we learned of them, Unix seconds.
    pub added_at: u64,
    /// Their devices we know.
    pub devices: Vec<ContactDevice>,
}

impl Contact {
    /// The contact's identity fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.identity)
    }
}

/// One device of a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactDevice {
    /// The device id from its certificate.
    pub device_id: [u8; 16],
    /// Its delivery address.
    pub address: String,
    /// How many of its KeyPackages we hold (ordinary and last-resort).
    pub key_packages: usize,
}

/// An invite to show: both link forms and the payload they encode.
#[derive(Debug, Clone)]
pub struct Invite {
    /// The `kith:i1/…` link (also what the QR code holds).
    pub uri: String,
    /// The `https://<relay domain>/i1#…` fallback.
    pub https_url: String,
    /// The payload (its secret never appears in `Debug`).
    pub payload: InvitePayload,
}

/// A join that was sent and waits for the inviter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joining {
    /// The short authentication string to compare with the inviter's screen.
    pub sas: String,
    /// The inviter's identity fingerprint, from the link.
    pub inviter: Fingerprint,
    /// True for a group invite (a Welcome follows), false for a contact invite.
    pub is_group: bool,
}

/// Why a join we sent did not make a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinFailure {
    /// The inviter says someone already used the one-time invite.
    AlreadyUsed,
    /// The inviter says the invite had expired.
    Expired,
    /// The inviter's identity is not the one the link's fingerprint names.
    FingerprintMismatch,
}

/// How the envelope that carried a handshake frame was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// With the first-message key of our invite with this row id.
    Invite(i64),
    /// With this device's envelope key.
    Device,
}

/// How to seal a frame the handshake sends.
pub(crate) enum SendKey {
    /// Under an invite's first-message key (SKESK).
    Invite(Zeroizing<[u8; 32]>),
    /// To a device's envelope key (PKESK).
    Device(DevicePublicKey),
    /// To the envelope key stored for the recipient's address (PKESK).
    Peer,
}

/// A frame to seal and send to one device.
pub(crate) struct Send {
    pub(crate) frame: Frame,
    pub(crate) key: SendKey,
    pub(crate) recipient: String,
}

/// What one incoming handshake frame produced.
#[derive(Default)]
pub(crate) struct HandshakeOutput {
    pub(crate) sends: Vec<Send>,
    pub(crate) events: Vec<Event>,
    /// Envelope keys of devices (by address) to remember.
    pub(crate) learned: Vec<(String, DevicePublicKey)>,
    /// A group invite was answered: add this device to this group.
    pub(crate) admit: Option<(GroupId, NewDevice)>,
}

/// This device's side of the handshake.
pub(crate) struct Handshake<'a> {
    pub(crate) engine: &'a GroupEngine,
    pub(crate) certificate: &'a DeviceCertificate,
    pub(crate) envelope_key: DevicePublicKey,
}

fn handshake_frame(message: &HandshakeMessage) -> Result<Frame, ContactError> {
    Ok(Frame {
        kind: FrameKind::Handshake,
        payload: message.encode()?,
    })
}

impl Handshake<'_> {
    fn identity(&self) -> &IdentityPublicKey {
        self.certificate.identity_key()
    }

    /// This device's card with `count` fresh KeyPackages (the last one last-resort if
    /// `last_resort`).
    fn card(&self, db: &Connection, count: usize, last_resort: bool) -> Result<Card, ContactError> {
        Ok(Card {
            certificate: self.certificate.clone(),
            envelope_key: self.envelope_key,
            key_packages: self.engine.key_packages(db, count)?,
            has_last_resort: last_resort,
        })
    }

    /// Makes and stores a one-time invite (to be a contact, or into `group`).
    pub(crate) fn create_invite(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        group: Option<&GroupId>,
        ttl: u64,
        https_host: &str,
    ) -> Result<Invite, ContactError> {
        if ttl == 0 || ttl > MAX_INVITE_TTL {
            return Err(ContactError::BadTtl(ttl));
        }
        let secret = InviteSecret::generate(rng);
        let channel = ChannelKey::generate(Role::Inviter, rng);
        let fingerprint = Fingerprint::of(self.identity());
        let payload = InvitePayload {
            kind: match group {
                Some(_) => InviteKind::Group { fingerprint },
                None => InviteKind::Contact { fingerprint },
            },
            channel_public_key: channel.public_key(),
            delivery_address: self.engine.address().to_owned(),
            invite_secret: secret.clone(),
            expires_at: now + ttl,
        };
        let uri = payload.to_uri()?;
        let https_url = payload.to_https_url(https_host)?;
        store::insert_invite(
            db,
            group,
            secret.as_bytes(),
            &channel.secret_bytes(),
            payload.expires_at,
            now,
        )?;
        Ok(Invite {
            uri,
            https_url,
            payload,
        })
    }

    /// Starts a join from a link: the join request to send and what to show.
    pub(crate) fn join(
        &self,
        db: &Connection,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
        link: &str,
    ) -> Result<(Joining, Send), ContactError> {
        let payload = InvitePayload::parse(link)?;
        let (inviter, is_group) = match &payload.kind {
            InviteKind::Contact { fingerprint } => (*fingerprint, false),
            InviteKind::Group { fingerprint } => (*fingerprint, true),
            InviteKind::DeviceLink => return Err(ContactError::WrongKind("device link")),
        };
        if payload.is_expired(now) {
            return Err(ContactError::Expired {
                expires_at: payload.expires_at,
            });
        }
        if inviter == Fingerprint::of(self.identity()) {
            return Err(ContactError::OwnInvite);
        }
        let key = ChannelKey::generate(Role::Joiner, rng);
        let mut channel = key.establish(&payload.channel_public_key, &payload.invite_secret)?;
        // A group invite uses one KeyPackage; a contact gets a stock and a last resort.
        let card = match is_group {
            true => self.card(db, 1, false)?,
            false => self.card(db, STOCK + 1, true)?,
        };
        let sealed = channel.seal(&card.encode()?)?;
        let joiner_key = key.public_key();
        store::insert_join(
            db,
            &joiner_key,
            &key.secret_bytes(),
            &payload.encode()?,
            now,
        )?;
        let send = Send {
            frame: handshake_frame(&HandshakeMessage::JoinRequest { joiner_key, sealed })?,
            key: SendKey::Invite(first_message_key(&payload.invite_secret)),
            recipient: payload.delivery_address.clone(),
        };
        let joining = Joining {
            sas: channel.short_authentication_string(),
            inviter,
            is_group,
        };
        Ok((joining, send))
    }

    /// Handles one incoming handshake frame's payload.
    pub(crate) fn receive(
        &self,
        db: &Connection,
        now: u64,
        payload: &[u8],
        via: Via,
    ) -> Result<HandshakeOutput, ContactError> {
        match (HandshakeMessage::decode(payload)?, via) {
            (HandshakeMessage::JoinRequest { joiner_key, sealed }, Via::Invite(id)) => {
                self.on_join_request(db, now, id, &joiner_key, &sealed)
            }
            (HandshakeMessage::Reply { joiner_key, sealed }, Via::Device) => {
                self.on_reply(db, now, &joiner_key, &sealed)
            }
            (HandshakeMessage::KeyPackages(card), Via::Device) => {
                let mut out = HandshakeOutput::default();
                self.on_key_packages(db, now, card, &mut out)?;
                Ok(out)
            }
            _ => {
                tracing::debug!("handshake message under the wrong kind of key; ignored");
                Ok(HandshakeOutput::default())
            }
        }
    }

    fn on_join_request(
        &self,
        db: &Connection,
        now: u64,
        id: i64,
        joiner_key: &[u8; 32],
        sealed: &[u8],
    ) -> Result<HandshakeOutput, ContactError> {
        let invite = store::invite(db, id)?;
        let mut out = HandshakeOutput::default();
        if invite.used_by.as_ref() == Some(joiner_key) {
            tracing::debug!("duplicate join request; ignored");
            return Ok(out);
        }
        let key = ChannelKey::from_secret_bytes(Role::Inviter, *invite.channel_secret);
        let secret = InviteSecret::from_bytes(*invite.invite_secret);
        let mut channel = key.establish(joiner_key, &secret)?;
        let card = Card::decode(&channel.open(sealed)?)?;
        let joiner = card.certificate.verify(None)?;
        let refusal = if invite.used_by.is_some() {
            Some(Refusal::AlreadyUsed)
        } else if now > invite.expires_at {
            Some(Refusal::Expired)
        } else {
            None
        };
        let body = match (refusal, &invite.group) {
            (Some(refusal), _) => {
                tracing::info!(?refusal, "join request refused");
                ReplyBody::Refused(refusal)
            }
            (None, None) => {
                let sas = channel.short_authentication_string();
                self.accept_contact(db, now, &card, &joiner, sas, &mut out)?
            }
            (None, Some(group)) => {
                let packages = check_card(db, &card, &joiner)?;
                let (key_package, _) = packages.into_iter().next().expect("a card has one");
                let device = NewDevice {
                    key_package,
                    identity: joiner.identity_key,
                };
                out.admit = Some((group.clone(), device));
                ReplyBody::Accepted(None)
            }
        };
        if refusal.is_none() {
            store::mark_invite_used(db, id, joiner_key, now)?;
            out.learned
                .push((joiner.delivery_address.clone(), card.envelope_key));
        }
        let reply = HandshakeMessage::Reply {
            joiner_key: *joiner_key,
            sealed: channel.seal(&body.encode()?)?,
        };
        out.sends.push(Send {
            frame: handshake_frame(&reply)?,
            key: SendKey::Device(card.envelope_key),
            recipient: joiner.delivery_address,
        });
        Ok(out)
    }

    /// Stores the joiner of a contact invite as a verified contact; returns the reply.
    fn accept_contact(
        &self,
        db: &Connection,
        now: u64,
        card: &Card,
        joiner: &VerifiedDevice,
        sas: String,
        out: &mut HandshakeOutput,
    ) -> Result<ReplyBody, ContactError> {
        let packages = check_card(db, card, joiner)?;
        let contact = store::upsert_contact(db, joiner, &card.certificate, now)?;
        store::stock_key_packages(db, contact, &joiner.device_id.0, &packages, now)?;
        out.events.push(Event::ContactAdded {
            contact: joiner.identity_key.to_bytes(),
            address: joiner.delivery_address.clone(),
            sas,
        });
        let own = self.card(db, STOCK + 1, true)?;
        Ok(ReplyBody::Accepted(Some(Box::new(own))))
    }

    fn on_reply(
        &self,
        db: &Connection,
        now: u64,
        joiner_key: &[u8; 32],
        sealed: &[u8],
    ) -> Result<HandshakeOutput, ContactError> {
        let mut out = HandshakeOutput::default();
        let Some(join) = store::pending_join(db, joiner_key)? else {
            tracing::debug!("reply for no pending join (a duplicate?); ignored");
            return Ok(out);
        };
        let payload = InvitePayload::decode(&join.invite)?;
        let key = ChannelKey::from_secret_bytes(Role::Joiner, *join.channel_secret);
        let mut channel = key.establish(&payload.channel_public_key, &payload.invite_secret)?;
        let body = ReplyBody::decode(&channel.open(sealed)?)?;
        let expected = match payload.kind {
            InviteKind::Contact { fingerprint } | InviteKind::Group { fingerprint } => fingerprint,
            InviteKind::DeviceLink => return Err(ContactError::WrongKind("device link")),
        };
        let failure = match body {
            ReplyBody::Refused(Refusal::AlreadyUsed) => Some(JoinFailure::AlreadyUsed),
            ReplyBody::Refused(Refusal::Expired) => Some(JoinFailure::Expired),
            ReplyBody::Accepted(None) => None,
            ReplyBody::Accepted(Some(card)) => {
                let claimed = card.certificate.identity_key();
                if Fingerprint::of(claimed) != expected {
                    Some(JoinFailure::FingerprintMismatch)
                } else {
                    let inviter = card.certificate.verify(Some(claimed))?;
                    let packages = check_card(db, &card, &inviter)?;
                    let contact = store::upsert_contact(db, &inviter, &card.certificate, now)?;
                    store::stock_key_packages(db, contact, &inviter.device_id.0, &packages, now)?;
                    out.events.push(Event::ContactAdded {
                        contact: inviter.identity_key.to_bytes(),
                        address: inviter.delivery_address.clone(),
                        sas: channel.short_authentication_string(),
                    });
                    out.learned
                        .push((inviter.delivery_address, card.envelope_key));
                    None
                }
            }
        };
        let state = match failure {
            Some(reason) => {
                out.events.push(Event::JoinFailed { reason });
                "failed"
            }
            None => "done",
        };
        store::finish_join(db, joiner_key, state)?;
        Ok(out)
    }

    fn on_key_packages(
        &self,
        db: &Connection,
        now: u64,
        card: Card,
        out: &mut HandshakeOutput,
    ) -> Result<(), ContactError> {
        let claimed = *card.certificate.identity_key();
        let Some(contact) = store::contact_id(db, &claimed)? else {
            tracing::debug!("KeyPackages from someone who is not a contact; ignored");
            return Ok(());
        };
        let device = card.certificate.verify(Some(&claimed))?;
        let packages = check_card(db, &card, &device)?;
        store::upsert_device(db, contact, &device, &card.certificate)?;
        store::stock_key_packages(db, contact, &device.device_id.0, &packages, now)?;
        out.learned
            .push((device.delivery_address, card.envelope_key));
        Ok(())
    }

    /// One fresh KeyPackage for every device of every contact (sent when one of ours was
    /// used: a Welcome arrived).
    pub(crate) fn replenish(&self, db: &Connection) -> Result<Vec<Send>, ContactError> {
        let mut sends = Vec::new();
        for contact in store::contacts(db)? {
            for device in contact.devices {
                let card = self.card(db, 1, false)?;
                sends.push(Send {
                    frame: handshake_frame(&HandshakeMessage::KeyPackages(card))?,
                    key: SendKey::Peer,
                    recipient: device.address,
                });
            }
        }
        Ok(sends)
    }
}

/// Checks every KeyPackage of a card: it parses, validates (signatures, lifetime) and its
/// leaf's certificate is the card's device of the verified identity. Returns the packages
/// with their last-resort flags.
fn check_card(
    db: &Connection,
    card: &Card,
    device: &VerifiedDevice,
) -> Result<Vec<(Vec<u8>, bool)>, ContactError> {
    let provider = KithProvider::new(db);
    let last = card.key_packages.len() - 1;
    let mut out = Vec::with_capacity(card.key_packages.len());
    for (index, bytes) in card.key_packages.iter().enumerate() {
        let package = KeyPackageIn::tls_deserialize_exact(bytes.as_slice())
            .map_err(|e| ContactError::KeyPackage(format!("{e:?}")))?
            .validate(provider.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| ContactError::KeyPackage(format!("{e:?}")))?;
        let leaf = package.leaf_node();
        let owner = verify_leaf_credential(
            leaf.credential(),
            leaf.signature_key(),
            Some(&device.identity_key),
        )?;
        if owner.device_id != device.device_id {
            return Err(ContactError::KeyPackage(
                "a KeyPackage of another device than the card's".into(),
            ));
        }
        out.push((bytes.clone(), card.has_last_resort && index == last));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
