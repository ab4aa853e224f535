//! The client: an [`Account`] and its [`GroupEngine`] joined to the envelope and the
//! transport. Every command and every incoming envelope is one `BEGIN IMMEDIATE`
//! transaction covering MLS state, the engine's tables, our messages, the outbox rows it
//! produced and (for incoming envelopes) the inbox cursor; events go out after the commit.
//!
//! ```no_run
//! # fn demo(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! use kith_core::account::Account;
//! use kith_core::client::Client;
//! let client = std::sync::Arc::new(Client::new(Account::open(dir)?)?);
//! let group = client.create_group("friends")?;
//! // client.add_member(&group, &bundle_of_a_friend)?;
//! client.send_text(&group, "hello")?;
//! // Run `client.account().inbox(..).run(client.inbox_handler(), stop)` and the outbox.
//! # Ok(()) }
//! ```
mod bundle;
mod commit;
mod contacts;
mod errors;
mod groups;
mod history;
mod messages;
pub(crate) mod store;
mod timers;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use kith_crypto::envelope::{
    find_key, open, seal, DeviceKeypair, OpenKey, SealKey as EnvelopeKey, SymmetricKey,
    SymmetricKind,
};
use kith_crypto::frame::{Frame, FrameKind};
use rand::rngs::OsRng;
use rusqlite::{Connection, Transaction};
use tokio::sync::Notify;

use commit::AfterCommit;

pub use bundle::{Bundle, BundleError, BUNDLE_VERSION, MAX_KEY_PACKAGE_LEN};
pub use contacts::Chat;
pub use errors::ClientError;
pub use groups::GroupSummary;
pub use history::{ChatMessage, FileData, MessageBody};
pub use messages::{DEFAULT_FILE_CHUNK_LEN, MAX_FILE_LEN};

use crate::account::Account;
use crate::contacts::{store as contact_rows, Via, REFUSAL_GRACE};
use crate::content::Content;
use crate::events::Event;
use crate::group::{self, GroupEngine, GroupId, Incoming, NewDevice, OpenedWith, Outgoing, Output};
use crate::transport::Outbox;

/// A message as the client shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message id, hex (the same on every device).
    pub id: String,
    /// The sending device's address.
    pub sender: String,
    /// What it says.
    pub content: Content,
    /// When the sender sent it, Unix seconds.
    pub sent_at: u64,
    /// True for messages this device sent.
    pub is_outgoing: bool,
}

/// One device's client.
pub struct Client {
    account: Account,
    engine: GroupEngine,
    envelope_key: DeviceKeypair,
    /// Events of inbox transactions, finished by the publisher thread once the commit is done.
    publisher: mpsc::Sender<Vec<Event>>,
    /// What follows each commit (its `timers` wake [`Client::run_timers`]).
    after_commit: AfterCommit,
    /// The largest chunk [`Client::send_file`] puts in one message.
    file_chunk_len: AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The client of an open account: its engine from the account's signing key and
    /// certificate, and its envelope key (made now if the account has none yet).
    pub fn new(account: Account) -> Result<Self, ClientError> {
        let keys = account.database().read(crate::db::device::load_keys)?;
        let engine = GroupEngine::new(keys.signing, keys.certificate)?;
        let envelope_key = account.database().transaction(|tx| {
            group::migrate(tx)?;
            store::envelope_key(tx)
        })?;
        let after_commit = AfterCommit {
            db: account.database().clone(),
            bus: account.events().clone(),
            outbox: account.outbox_wake(),
            timers: Arc::new(Notify::new()),
        };
        Ok(Self {
            account,
            engine,
            envelope_key,
            publisher: after_commit.spawn_publisher(),
            after_commit,
            file_chunk_len: AtomicUsize::new(DEFAULT_FILE_CHUNK_LEN),
        })
    }

    /// Sets the largest chunk of a file sent in one message (at least 1 KiB), for a relay
    /// with a small size limit.
    pub fn set_file_chunk_len(&self, len: usize) {
        self.file_chunk_len.store(len.max(1024), Ordering::Relaxed);
    }

    fn file_chunk_len(&self) -> usize {
        self.file_chunk_len.load(Ordering::Relaxed)
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// This device's key bundle (encoded [`Bundle`]) with a fresh KeyPackage.
    pub fn bundle(&self) -> Result<Vec<u8>, ClientError> {
        let key_package =
            self.transaction(|tx, _| Ok(self.engine.key_packages(tx, 1)?.into_iter().next()))?;
        let key_package = key_package.ok_or(ClientError::Malformed {
            what: "KeyPackage list",
        })?;
        let bundle = Bundle {
            address: self.account.address().to_owned(),
            envelope_key: self.envelope_key.public(),
            identity: self.account.identity().public_key(),
            key_package,
        };
        Ok(bundle.encode()?)
    }

    /// Creates a group named `name` with this device as its only member.
    pub fn create_group(&self, name: &str) -> Result<GroupId, ClientError> {
        self.command(|tx, now, events| {
            let (group, out) = self.engine.create_group(tx, now, &mut OsRng, name)?;
            store::chat_of(tx, &group, now)?;
            self.apply(tx, now, out, events)?;
            Ok(group)
        })
    }

    /// Adds the device of `bundle` to `group` and remembers its envelope key.
    pub fn add_member(&self, group: &GroupId, bundle: &[u8]) -> Result<(), ClientError> {
        let bundle = Bundle::decode(bundle)?;
        self.command(|tx, now, events| {
            store::learn_peer(tx, &bundle.address, &bundle.envelope_key, now)?;
            let new = NewDevice {
                key_package: bundle.key_package.clone(),
                identity: bundle.identity,
            };
            let out = self.engine.add_devices(tx, now, group, vec![new])?;
            self.apply(tx, now, out, events)?;
            self.share_role_with_own_device(tx, now, group, &bundle, events)
        })
    }

    /// A device of this account's own user shares its admin role: an admin that adds its
    /// user's other device makes it an admin too (roles belong to people, not devices).
    fn share_role_with_own_device(
        &self,
        tx: &Connection,
        now: u64,
        group: &GroupId,
        bundle: &Bundle,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let own = bundle.identity == self.account.identity().public_key();
        let admins = self.engine.admins(tx, group)?;
        if !own || !admins.iter().any(|a| a == self.account.address()) {
            return Ok(());
        }
        let added = self
            .engine
            .members(tx, group)?
            .iter()
            .any(|m| m.address == bundle.address);
        if added {
            let out = self
                .engine
                .make_admin(tx, now, group, vec![bundle.address.clone()])?;
            self.apply(tx, now, out, events)?;
        }
        Ok(())
    }

    /// Removes the member device at `address` from `group`.
    pub fn remove_member(&self, group: &GroupId, address: &str) -> Result<(), ClientError> {
        self.command(|tx, now, events| {
            let out = self
                .engine
                .remove_devices(tx, now, group, vec![address.to_owned()])?;
            self.apply(tx, now, out, events)
        })
    }

    /// Every stored message of `group` as it arrived (texts, reactions, edits, ...; a
    /// file once, as its metadata), oldest first; [`Client::history`] folds them for display.
    pub fn messages(&self, group: &GroupId) -> Result<Vec<StoredMessage>, ClientError> {
        self.transaction(|tx, _| store::messages(tx, group))
    }

    /// The groups this device is in.
    pub fn groups(&self) -> Result<Vec<GroupId>, ClientError> {
        self.transaction(|tx, _| Ok(self.engine.groups(tx)?))
    }

    /// Runs the engine's due work (delayed commits, stash expiry) and sends what it made;
    /// returns when next to call it (Unix seconds), if ever. Call it at least then.
    pub fn handle_timeout(&self) -> Result<Option<u64>, ClientError> {
        // Not `command`: the timers must not wake themselves (they would spin).
        self.run_command(false, |tx, now, events| {
            let out = self.engine.handle_timeout(tx, now)?;
            self.apply(tx, now, out, events)?;
            Ok(self.engine.poll_timeout(tx)?)
        })
    }

    /// The handler for [`crate::transport::Inbox::run`]: each envelope goes through
    /// [`Client::handle_envelope`] in the inbox's transaction; its events are emitted once
    /// that transaction has committed.
    pub fn inbox_handler(
        self: &Arc<Self>,
    ) -> impl FnMut(&Transaction<'_>, &crate::transport::Incoming<'_>) -> Result<(), ClientError>
    {
        let client = Arc::clone(self);
        move |tx, incoming| {
            let events = client.handle_envelope(tx, unix_now(), incoming.bytes)?;
            // The publisher waits for the database lock, i.e. for this commit, then wakes
            // the outbox for what the envelope produced and emits the events.
            let _ = client.publisher.send(events);
            Ok(())
        }
    }

    /// Handles one envelope inside the caller's transaction: opens it with an epoch key,
    /// this device's key or the first-message key of a live invite; handshake frames go to
    /// the contacts module, the rest to the engine; an envelope no key opens is stashed.
    /// Then applies the output. Returns the events; once the caller's transaction has
    /// committed, hand them to [`Client::committed`].
    pub fn handle_envelope(
        &self,
        tx: &Connection,
        now: u64,
        bytes: &[u8],
    ) -> Result<Vec<Event>, ClientError> {
        let mut events = Vec::new();
        let Some((frame, opened)) = self.open_envelope(tx, now, bytes)? else {
            tracing::debug!("no key opens the envelope; stashed");
            self.engine.stash(tx, now, bytes)?;
            return Ok(events);
        };
        let opened_with = match (frame.kind, opened) {
            (FrameKind::Handshake, Opened::Invite(id)) => {
                self.receive_handshake(tx, now, &frame.payload, Via::Invite(id), &mut events)?;
                return Ok(events);
            }
            (FrameKind::Handshake, Opened::Group(OpenedWith::Device)) => {
                self.receive_handshake(tx, now, &frame.payload, Via::Device, &mut events)?;
                return Ok(events);
            }
            (_, Opened::Invite(_)) | (FrameKind::Handshake, _) => {
                tracing::debug!("frame kind does not fit the key that opened it; ignored");
                return Ok(events);
            }
            (_, Opened::Group(opened_with)) => opened_with,
        };
        let incoming = Incoming {
            frame,
            opened_with,
            stash_id: None,
        };
        let out = self.engine.receive(tx, now, incoming)?;
        self.apply(tx, now, out, &mut events)?;
        Ok(events)
    }

    /// What follows the commit of a [`Client::handle_envelope`] transaction: erased texts
    /// are scrubbed from the WAL, the outbox is woken for what the envelope produced, and
    /// the events are emitted.
    pub fn committed(&self, events: Vec<Event>) {
        self.after_commit.finish(events, true);
    }

    /// Seals and queues every outgoing frame, records events (storing messages), and
    /// re-runs stashed envelopes the new epoch keys open, until nothing is left.
    fn apply(
        &self,
        tx: &Connection,
        now: u64,
        out: Output,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let mut queue = VecDeque::from([out]);
        while let Some(out) = queue.pop_front() {
            for outgoing in &out.outgoing {
                if outgoing.recipients.is_empty() {
                    continue;
                }
                let envelope = self.seal_outgoing(tx, now, outgoing)?;
                Outbox::enqueue(tx, &envelope, &outgoing.recipients)?;
            }
            for event in out.events {
                self.record(tx, now, event, events)?;
            }
            for stashed in out.reopen {
                let Some((frame, Opened::Group(opened_with))) =
                    self.open_envelope(tx, now, &stashed.envelope)?
                else {
                    continue;
                };
                let incoming = Incoming {
                    frame,
                    opened_with,
                    stash_id: Some(stashed.id),
                };
                if let Some(out) = self.receive_stashed(tx, now, incoming)? {
                    queue.push_back(out);
                }
            }
        }
        Ok(())
    }

    /// Receives a reopened stash entry inside a savepoint, so that one bad entry is rolled
    /// back alone (it stays stashed until it expires) instead of failing the envelope that
    /// made it open.
    fn receive_stashed(
        &self,
        tx: &Connection,
        now: u64,
        incoming: Incoming,
    ) -> Result<Option<Output>, ClientError> {
        tx.execute_batch("SAVEPOINT kith_reopen")?;
        match self.engine.receive(tx, now, incoming) {
            Ok(out) => {
                tx.execute_batch("RELEASE kith_reopen")?;
                Ok(Some(out))
            }
            Err(error) => {
                tracing::warn!(%error, "a reopened stashed envelope failed; left stashed");
                tx.execute_batch("ROLLBACK TO kith_reopen; RELEASE kith_reopen")?;
                Ok(None)
            }
        }
    }

    fn seal_outgoing(
        &self,
        tx: &Connection,
        now: u64,
        outgoing: &Outgoing,
    ) -> Result<Vec<u8>, ClientError> {
        let from = self.account.address();
        let frame: &Frame = &outgoing.frame;
        Ok(match &outgoing.key {
            group::SealKey::Epoch { key, .. } => {
                let key = SymmetricKey::new(SymmetricKind::Epoch, **key);
                seal(frame, EnvelopeKey::Symmetric(&key), from, now, &mut OsRng)?
            }
            group::SealKey::Device { address } => {
                let key = store::peer_key(tx, address)?;
                seal(frame, EnvelopeKey::Device(&key), from, now, &mut OsRng)?
            }
        })
    }

    fn open_envelope(
        &self,
        tx: &Connection,
        now: u64,
        bytes: &[u8],
    ) -> Result<Option<(Frame, Opened)>, ClientError> {
        let epoch_keys = self.engine.epoch_keys(tx)?;
        let invites = contact_rows::live_invites(tx, now, REFUSAL_GRACE)?;
        let mut symmetric: Vec<SymmetricKey> = epoch_keys
            .iter()
            .map(|k| SymmetricKey::new(SymmetricKind::Epoch, *k.key))
            .collect();
        for (_, secret) in &invites {
            let secret = kith_crypto::invite::InviteSecret::from_bytes(**secret);
            let key = kith_crypto::channel::first_message_key(&secret);
            symmetric.push(SymmetricKey::new(SymmetricKind::Invite, *key));
        }
        let mut keys: Vec<OpenKey<'_>> = symmetric.iter().map(OpenKey::Symmetric).collect();
        keys.push(OpenKey::Device(&self.envelope_key));
        let Some(index) = find_key(bytes, &keys) else {
            return Ok(None);
        };
        let frame = open(bytes, keys[index])?;
        let opened = if let Some(k) = epoch_keys.get(index) {
            Opened::Group(OpenedWith::Epoch {
                group: k.group.clone(),
                epoch: k.epoch,
            })
        } else if let Some((id, _)) = invites.get(index - epoch_keys.len()) {
            Opened::Invite(*id)
        } else {
            Opened::Group(OpenedWith::Device)
        };
        Ok(Some((frame, opened)))
    }

    /// Turns an engine event into rows and bus events.
    fn record(
        &self,
        tx: &Connection,
        now: u64,
        event: group::Event,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        match event {
            group::Event::Message {
                group,
                sender,
                identity,
                message,
            } => {
                let chat = store::chat_of(tx, &group, now)?;
                let stored = StoredMessage {
                    id: hex::encode(message.id.0),
                    sender,
                    content: message.content,
                    sent_at: message.sent_at,
                    is_outgoing: false,
                };
                let stored = history::store(tx, chat, &stored, &identity.to_bytes(), now)?;
                events.extend(self.after_store(tx, &group, chat, stored)?);
            }
            other => {
                if let group::Event::Joined { group } = &other {
                    store::chat_of(tx, group, now)?;
                    // One of our KeyPackages was used: send our contacts fresh ones.
                    self.replenish_key_packages(tx, now)?;
                }
                events.push(Event::Group(other));
            }
        }
        Ok(())
    }

    /// Runs one command in its own transaction, then wakes the outbox and emits events.
    fn command<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>, u64, &mut Vec<Event>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        self.run_command(true, work)
    }

    /// [`Client::command`], waking the timers afterwards only if `wake_timers`.
    fn run_command<T>(
        &self,
        wake_timers: bool,
        work: impl FnOnce(&Transaction<'_>, u64, &mut Vec<Event>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut events = Vec::new();
        let value = self.transaction(|tx, now| work(tx, now, &mut events))?;
        self.after_commit.finish(events, wake_timers);
        Ok(value)
    }

    fn transaction<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>, u64) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        self.account
            .database()
            .transaction(|tx| work(tx, unix_now()))
    }
}

/// Which kind of key opened an envelope.
enum Opened {
    /// An epoch key or this device's key: for the engine (or, device key, a handshake reply).
    Group(OpenedWith),
    /// The first-message key of our invite with this row id.
    Invite(i64),
}

fn unix_now() -> u64 {
    (crate::transport::unix_millis() / 1000).max(0) as u64
}
