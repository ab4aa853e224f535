//! The typed event stream every client consumes: what happened, in the order the core
//! committed it. Clients never read the database; they render these events and call the
//! core's methods.
//!
//! ```
//! # async fn demo() {
//! use kith_core::events::{Event, EventBus};
//! let bus = EventBus::new();
//! let mut events = bus.subscribe();
//! bus.emit(Event::OutboxChanged { pending: 1 });
//! assert_eq!(events.recv().await.unwrap(), Event::OutboxChanged { pending: 1 });
//! # }
//! ```
use tokio::sync::broadcast;

use crate::db::OutboxId;

/// How many events a slow subscriber may fall behind before it sees
/// [`broadcast::error::RecvError::Lagged`] (and should reload what it shows).
pub const EVENT_CAPACITY: usize = 1024;

/// A chat's local id (a row of the chats table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatId(pub i64);

/// A message's stable id (the same on every device).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub String);

/// The state of the connection to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Trying to connect or log in.
    Connecting,
    /// Logged in and watching the inbox (IDLE).
    Connected,
    /// The connection failed; the next attempt is after a backoff.
    Disconnected,
}

/// Something the user may want to see.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message was received and stored.
    MessageReceived {
        /// The chat it belongs to.
        chat: ChatId,
        /// The message.
        message: MessageId,
    },
    /// A stored message changed: a reaction, an edit or a deletion arrived for it.
    MessageChanged {
        /// The chat it belongs to.
        chat: ChatId,
        /// The message that changed.
        message: MessageId,
    },
    /// An outbox envelope was accepted by our relay (SMTP 250).
    EnvelopeSent {
        /// The outbox entry that was sent (and is now gone).
        outbox: OutboxId,
    },
    /// The relay refused an outbox envelope for good (a 5xx); it was dropped.
    EnvelopeRejected {
        /// The outbox entry.
        outbox: OutboxId,
        /// The relay's reply, for the user or a log.
        reason: String,
    },
    /// The number of envelopes waiting in the outbox changed.
    OutboxChanged {
        /// Envelopes still waiting.
        pending: usize,
    },
    /// A message of ours was sent to the relay.
    MessageSent {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
    },
    /// A message of ours was seen by a recipient device.
    MessageDelivered {
        /// The chat.
        chat: ChatId,
        /// The message.
        message: MessageId,
    },
    /// Someone joined a chat.
    MemberAdded {
        /// The chat.
        chat: ChatId,
        /// The member's identity key (32 bytes).
        member: [u8; 32],
    },
    /// Someone left or was removed from a chat.
    MemberRemoved {
        /// The chat.
        chat: ChatId,
        /// The member's identity key (32 bytes).
        member: [u8; 32],
    },
    /// A contact was verified (by invite, join or in person).
    ContactVerified {
        /// The contact's identity key (32 bytes).
        contact: [u8; 32],
    },
    /// An invite handshake made a verified contact (on both sides).
    ContactAdded {
        /// The contact's identity key (32 bytes).
        contact: [u8; 32],
        /// The contact device's delivery address.
        address: String,
        /// The 6-digit short authentication string ("123 456") both screens show.
        sas: String,
    },
    /// A join we sent was refused or did not check out.
    JoinFailed {
        /// Why.
        reason: crate::contacts::JoinFailure,
    },
    /// An incoming envelope could not be used and was dropped from the relay.
    IncomingDropped {
        /// Why, for a log (never content).
        reason: String,
    },
    /// The relay connection changed state.
    ConnectionChanged(ConnectionState),
    /// Something happened in a group: joined, epoch or membership changed, renamed
    /// (messages come as [`Event::MessageReceived`]).
    Group(crate::group::Event),
}

/// The sending side of the event stream; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    /// A bus with [`EVENT_CAPACITY`] buffered events per subscriber.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    /// A new subscriber; it sees every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Sends `event` to every subscriber (dropped silently if there is none).
    pub fn emit(&self, event: Event) {
        let _ = self.sender.send(event);
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
