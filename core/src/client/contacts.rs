//! The client's contact commands: invites, joins, contacts, adding contacts to groups;
//! and the handling of incoming handshake frames inside the envelope's transaction.
use kith_crypto::envelope::{seal, SealKey as EnvelopeKey, SymmetricKey, SymmetricKind};
use rand::rngs::OsRng;
use rusqlite::Connection;

use super::{store, Client, ClientError};
use crate::contacts::{
    store as rows, Contact, ContactError, Handshake, HandshakeOutput, Invite, Joining, Send,
    SendKey, Via, REFUSAL_GRACE,
};
use crate::events::Event;
use crate::group::{GroupId, NewDevice};
use crate::transport::Outbox;

/// A chat as listed: its local id, group id, name and message count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// The local chat id.
    pub id: i64,
    /// The MLS group id.
    pub group: GroupId,
    /// The group's name, as this device knows it.
    pub name: String,
    /// How many messages it shows.
    pub messages: usize,
}

impl Client {
    pub(crate) fn handshake(&self) -> Handshake<'_> {
        Handshake {
            engine: &self.engine,
            certificate: self.account.certificate(),
            envelope_key: self.envelope_key.public(),
        }
    }

    /// Makes a one-time contact invite valid for `ttl` seconds (at most
    /// [`crate::contacts::MAX_INVITE_TTL`]): its `kith:` link, https form and payload.
    pub fn create_invite(&self, ttl: u64) -> Result<Invite, ClientError> {
        self.make_invite(None, ttl)
    }

    /// Makes a one-time invite into `group`: whoever joins with it is added by this device.
    pub fn create_group_invite(&self, group: &GroupId, ttl: u64) -> Result<Invite, ClientError> {
        // Fails (group error) if this device is not in the group.
        self.transaction(|tx, _| Ok(self.engine.epoch(tx, group)?))?;
        self.make_invite(Some(group), ttl)
    }

    fn make_invite(&self, group: Option<&GroupId>, ttl: u64) -> Result<Invite, ClientError> {
        let host = self.account.relay().domain.clone();
        self.command(|tx, now, _| {
            rows::expire_invites(tx, now, REFUSAL_GRACE)?;
            Ok(self
                .handshake()
                .create_invite(tx, now, &mut OsRng, group, ttl, &host)?)
        })
    }

    /// Joins with an invite link: queues the join request; the contact (or the group)
    /// arrives with the inviter's answer as [`Event::ContactAdded`] (or a Welcome).
    pub fn join(&self, link: &str) -> Result<Joining, ClientError> {
        self.command(|tx, now, _| {
            let (joining, send) = self.handshake().join(tx, now, &mut OsRng, link)?;
            self.queue_send(tx, now, send)?;
            Ok(joining)
        })
    }

    /// Every contact, with its devices and KeyPackage stock.
    pub fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        self.transaction(|tx, _| Ok(rows::contacts(tx)?))
    }

    /// The contact one of whose devices has this address, or whose fingerprint is this
    /// (hex, or the `kith:fp1/` form).
    pub fn find_contact(&self, query: &str) -> Result<Contact, ClientError> {
        let query = query.trim();
        let fingerprint = kith_crypto::fingerprint::Fingerprint::parse_uri(query)
            .ok()
            .map(|f| hex::encode(f.as_bytes()))
            .unwrap_or_else(|| query.to_ascii_lowercase());
        self.contacts()?
            .into_iter()
            .find(|c| {
                hex::encode(c.fingerprint().as_bytes()) == fingerprint
                    || c.devices.iter().any(|d| d.address == query)
            })
            .ok_or_else(|| ContactError::UnknownContact(query.to_owned()).into())
    }

    /// Adds every device of `contact` to `group`, each from a KeyPackage of its stock.
    pub fn add_contact_to_group(
        &self,
        group: &GroupId,
        contact: &Contact,
    ) -> Result<(), ClientError> {
        self.command(|tx, now, events| {
            let mut devices = Vec::new();
            for device in &contact.devices {
                let key_package = rows::take_key_package(tx, contact.id, &device.device_id)?
                    .ok_or_else(|| ContactError::NoKeyPackage {
                        address: device.address.clone(),
                    })?;
                devices.push(NewDevice {
                    key_package,
                    identity: contact.identity,
                });
            }
            if devices.is_empty() {
                return Err(ContactError::UnknownContact(contact.fingerprint().to_uri()).into());
            }
            let out = self.engine.add_devices(tx, now, group, devices)?;
            self.apply(tx, now, out, events)
        })
    }

    /// The group chats, in the order they were made.
    pub fn chats(&self) -> Result<Vec<Chat>, ClientError> {
        self.transaction(|tx, _| {
            let mut stmt = tx.prepare(
                "SELECT c.id, c.group_id, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id)
                 FROM chats c WHERE c.group_id IS NOT NULL ORDER BY c.id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?;
            let mut chats = Vec::new();
            for row in rows {
                let (id, group, messages) = row?;
                let group = GroupId(group);
                let name = self.engine.group_name(tx, &group).unwrap_or_default();
                chats.push(Chat {
                    id,
                    group,
                    name,
                    messages: messages as usize,
                });
            }
            Ok(chats)
        })
    }

    /// Handles a handshake frame inside the envelope's transaction.
    pub(super) fn receive_handshake(
        &self,
        tx: &Connection,
        now: u64,
        payload: &[u8],
        via: Via,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let out = self.handshake().receive(tx, now, payload, via)?;
        self.apply_handshake(tx, now, out, events)
    }

    fn apply_handshake(
        &self,
        tx: &Connection,
        now: u64,
        out: HandshakeOutput,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        for (address, key) in &out.learned {
            store::learn_peer(tx, address, key, now)?;
        }
        for send in out.sends {
            self.queue_send(tx, now, send)?;
        }
        events.extend(out.events);
        if let Some((group, device)) = out.admit {
            // Hook for admin roles: a device that may not add members would instead ask an
            // admin device to (an application-level request), here.
            let added = self.engine.add_devices(tx, now, &group, vec![device])?;
            self.apply(tx, now, added, events)?;
        }
        Ok(())
    }

    /// Sends one fresh KeyPackage to every contact device (one of ours was just used).
    pub(super) fn replenish_key_packages(
        &self,
        tx: &Connection,
        now: u64,
    ) -> Result<(), ClientError> {
        for send in self.handshake().replenish(tx)? {
            self.queue_send(tx, now, send)?;
        }
        Ok(())
    }

    fn queue_send(&self, tx: &Connection, now: u64, send: Send) -> Result<(), ClientError> {
        let from = self.account.address();
        let envelope = match send.key {
            SendKey::Invite(key) => {
                let key = SymmetricKey::new(SymmetricKind::Invite, *key);
                seal(
                    &send.frame,
                    EnvelopeKey::Symmetric(&key),
                    from,
                    now,
                    &mut OsRng,
                )?
            }
            SendKey::Device(key) => seal(
                &send.frame,
                EnvelopeKey::Device(&key),
                from,
                now,
                &mut OsRng,
            )?,
            SendKey::Peer => {
                let key = store::peer_key(tx, &send.recipient)?;
                seal(
                    &send.frame,
                    EnvelopeKey::Device(&key),
                    from,
                    now,
                    &mut OsRng,
                )?
            }
        };
        Outbox::enqueue(tx, &envelope, &[send.recipient])?;
        Ok(())
    }
}
