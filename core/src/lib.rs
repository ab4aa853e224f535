//! kith-core: the client core library every Kith client is a thin shell over.
//!
//! [`group::GroupEngine`] runs MLS groups over relays that order nothing, sans-IO: the
//! caller opens envelopes, hands in frames with the time and an RNG inside one
//! `BEGIN IMMEDIATE` transaction, and seals and sends what comes out
//! (`docs/groups.md`). [`content`] is what application messages say.
//!
//! ```
//! use kith_core::content::Content;
//! use kith_core::group::{migrate, Event, GroupEngine, Incoming, NewDevice, OpenedWith, SealKey};
//! use kith_crypto::certificate::{DeviceCertificate, DeviceId};
//! use kith_crypto::identity::IdentityKey;
//! use kith_crypto::mls::{begin_immediate, run_migrations, DeviceSigningKey};
//! use rand::rngs::OsRng;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = |address: &str| -> Result<_, Box<dyn std::error::Error>> {
//!     let mut db = rusqlite::Connection::open_in_memory()?;
//!     run_migrations(&mut db)?;
//!     migrate(&db)?;
//!     let identity = IdentityKey::generate(&mut OsRng);
//!     let signer = DeviceSigningKey::generate(&mut OsRng);
//!     let id = DeviceId::generate(&mut OsRng);
//!     let cert = DeviceCertificate::issue(&identity, id, signer.public_key(), address, 0)?;
//!     Ok((GroupEngine::new(signer, cert)?, db, identity.public_key()))
//! };
//! let (alice, alice_db, _) = device("alice@relay.example")?;
//! let (bob, bob_db, bob_identity) = device("bob@relay.example")?;
//! let now = 1_700_000_000;
//!
//! // Alice creates a group and adds Bob from one of his KeyPackages.
//! let tx = begin_immediate(&alice_db)?;
//! let (group, _) = alice.create_group(&tx, now, &mut OsRng, "friends")?;
//! let key_package = bob.key_packages(&bob_db, 1)?.remove(0);
//! let new = NewDevice { key_package, identity: bob_identity };
//! let out = alice.add_devices(&tx, now, &group, vec![new])?;
//! tx.commit()?;
//!
//! // The edge seals each Outgoing with its key; Bob's edge opens the Welcome with his
//! // device key and hands the frame in.
//! let welcome = out.outgoing.iter().find(|o| matches!(o.key, SealKey::Device { .. }));
//! let frame = welcome.expect("a Welcome for Bob").frame.clone();
//! let tx = begin_immediate(&bob_db)?;
//! let incoming = Incoming { frame, opened_with: OpenedWith::Device, stash_id: None };
//! let out = bob.receive(&tx, now, incoming)?;
//! tx.commit()?;
//! assert!(out.events.contains(&Event::Joined { group: group.clone() }));
//! assert_eq!(bob.epoch(&bob_db, &group)?, alice.epoch(&alice_db, &group)?);
//!
//! // Alice sends; the frame is sealed with the epoch's envelope key, which Bob lists.
//! let tx = begin_immediate(&alice_db)?;
//! let text = Content::Text { body: "hello".into(), reply_to: None };
//! let (_, out) = alice.send(&tx, now, &mut OsRng, &group, text)?;
//! tx.commit()?;
//! let SealKey::Epoch { key, epoch, .. } = &out.outgoing[0].key else { unreachable!() };
//! assert!(bob.epoch_keys(&bob_db)?.iter().any(|k| k.key == *key && k.epoch == *epoch));
//! let frame = out.outgoing[0].frame.clone();
//! let tx = begin_immediate(&bob_db)?;
//! let opened_with = OpenedWith::Epoch { group: group.clone(), epoch: *epoch };
//! let out = bob.receive(&tx, now, Incoming { frame, opened_with, stash_id: None })?;
//! tx.commit()?;
//! assert!(matches!(&out.events[0], Event::Message { message, .. }
//!     if message.content == Content::Text { body: "hello".into(), reply_to: None }));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod content;
pub mod group;
