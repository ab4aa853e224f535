//! kith-core: the client core library every Kith client is a thin shell over.
//!
//! - [`account`]: one account per data directory (identity key, device key and certificate,
//!   relay credentials), created the chatmail way on first use;
//! - [`db`]: the account's SQLite database, where every change that belongs together is
//!   one transaction (MLS state, our rows, the inbox cursor, the outbox);
//! - [`transport`]: the outbox (SMTP submission) and the inbox loop (IMAP with IDLE), which
//!   deletes a message from the relay only after its effects are committed;
//! - [`events`]: the typed event stream clients render.
//! - [`contacts`]: invites, the sans-IO invite/join handshake, verified contacts and their
//!   KeyPackage stock;
//! - [`group`] and [`content`]: the sans-IO group engine and what messages say (below).
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
//!
//! The edge that runs it: the inbox hands each fetched envelope to a handler inside the
//! transaction that also records the cursor.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kith_core::account::Account;
//! use kith_core::transport::{InboxOptions, Incoming, OutboxOptions};
//! use tokio_util::sync::CancellationToken;
//!
//! let account = Account::open(std::path::Path::new("/var/lib/kith/alice"))?;
//! let stop = CancellationToken::new();
//! let outbox = account.outbox(OutboxOptions::default());
//! tokio::spawn({ let stop = stop.clone(); async move { outbox.run(stop).await } });
//! let handler = |tx: &rusqlite::Transaction<'_>, incoming: &Incoming<'_>| {
//!     // open the envelope, run the group engine, write its effects through `tx`
//!     Ok::<(), std::convert::Infallible>(())
//! };
//! account.inbox(InboxOptions::default()).run(handler, stop).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod account;
pub mod client;
pub mod contacts;
pub mod content;
pub mod db;
pub mod events;
pub mod group;
pub mod transport;
